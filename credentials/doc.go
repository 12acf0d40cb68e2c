// Package credentials is what stsguard knows about the credentials of
// database and quorum images, apart from any rule: the image profiles
// (grace period, password env vars, when a password is required), the name
// patterns of env vars and Secret keys that hold credentials, the
// well-known weak passwords, and the Secrets stsguard writes to hold a
// moved or generated password (SecretRequest, planned against the Secret
// as it exists, and the labels that mark a Secret as stsguard's).
//
// The rules consult a Config through engine.Config.Credentials; a policy
// file changes it (package policy). Nothing here reads the API or holds a
// secret value beyond a SecretRequest's, which no String or error prints.
package credentials
