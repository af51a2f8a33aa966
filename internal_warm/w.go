package warm
import (
	_ "github.com/microsoftgraph/msgraph-sdk-go/models"
	_ "github.com/microsoftgraph/msgraph-sdk-go/policies"
	_ "github.com/microsoftgraph/msgraph-sdk-go/admin"
	_ "github.com/microsoftgraph/msgraph-sdk-go/identity"
	_ "github.com/microsoftgraph/msgraph-sdk-go/auditlogs"
	_ "github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)
