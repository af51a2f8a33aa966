package sandbox_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/c2bot/c2bot/tenant/sandbox"
)

// TestMSALConfidentialClient proves the production sign-in path works: MSAL
// Go's confidential client, pointed at the sandbox as its authority, gets a
// token (secret and certificate) that Graph endpoints accept.
func TestMSALConfidentialClient(t *testing.T) {
	certPEM, keyPEM := rsaCert(t)
	srv, err := sandbox.Start(sandbox.Options{ClientCertPEM: certPEM})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	secretCred, err := confidential.NewCredFromSecret(sandbox.DefaultClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	certs, key, err := confidential.CertFromPEM(append(certPEM, keyPEM...), "")
	if err != nil {
		t.Fatal(err)
	}
	certCred, err := confidential.NewCredFromCert(certs, key)
	if err != nil {
		t.Fatal(err)
	}
	badCred, err := confidential.NewCredFromSecret("wrong")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		cred confidential.Credential
		ok   bool
	}{
		{"secret", secretCred, true},
		{"certificate", certCred, true},
		{"bad secret", badCred, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, err := confidential.New(srv.URL()+"/"+sandbox.DefaultTenantID, sandbox.DefaultClientID, tc.cred,
				confidential.WithHTTPClient(srv.Client()),
				confidential.WithInstanceDiscovery(false))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := app.AcquireTokenByCredential(ctx, []string{srv.URL() + "/.default"})
			if !tc.ok {
				if err == nil {
					t.Fatal("token acquired with a wrong secret")
				}
				return
			}
			if err != nil {
				t.Fatalf("AcquireTokenByCredential: %v", err)
			}
			if res.AccessToken == "" {
				t.Fatal("empty access token")
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", nil)
			req.Header.Set("Authorization", "Bearer "+res.AccessToken)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("Graph with MSAL token: status %d", resp.StatusCode)
			}
		})
	}
}

// rsaCert makes an app certificate and its key, as an admin would upload.
func rsaCert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "c2bot test app"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return certPEM, keyPEM
}
