package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/c2bot/c2bot/store"
)

// userError is an error whose text is meant for the person in the channel.
type userError struct{ msg string }

func (e *userError) Error() string { return e.msg }

// userErrorf builds an error that ErrorMessage shows as is.
func userErrorf(format string, a ...any) error {
	return &userError{msg: fmt.Sprintf(format, a...)}
}

// userMessager is implemented by errors that know how to describe
// themselves safely to a chat user (tenant.GraphError does).
type userMessager interface{ UserMessage() string }

// ErrorMessage turns an error into the sentence a person in the channel
// reads. Details stay in the log; secrets never appear in either.
func ErrorMessage(err error) string {
	var ue *userError
	var um userMessager
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ue):
		return ue.msg
	case errors.Is(err, store.ErrUnavailable):
		return "c2bot cannot reach its database right now. Try again in a minute; “status” then shows where things stand."
	case errors.Is(err, store.ErrNotFound):
		return "No such request. “status” lists the open ones."
	case errors.Is(err, store.ErrConflict):
		return "That request has already moved on; nothing was changed. “status” shows where it is."
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "That took too long and was stopped; nothing more will happen for it. Try again."
	case errors.As(err, &um):
		return um.UserMessage()
	}
	return "Something went wrong on c2bot's side; the details are in its log."
}
