// Package apiwarnings records the warnings the apiserver returns with a
// response (the "Warning:" lines kubectl prints): admission webhooks'
// warnings and deprecation notices. Set a Recorder as a rest.Config's
// WarningHandlerWithContext; read what arrived with Take.
package apiwarnings
