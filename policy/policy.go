package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/stsguard/stsguard/credentials"
	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/rules"
)

// APIVersion and Kind of the policy file.
const (
	APIVersion = "config.stsguard.io/v1alpha1"
	Kind       = "Policy"
)

// Policy is the config.stsguard.io/v1alpha1 Policy document. Every field is
// optional; an empty Policy is the built-in default.
type Policy struct {
	metav1.TypeMeta `json:",inline"`

	// Rules sets the action of rules by ID: Deny, Warn, Audit or Off.
	Rules map[string]Action `json:"rules,omitempty"`
	// Mutations turns mutations on or off by ID: On or Off.
	Mutations map[string]MutationMode `json:"mutations,omitempty"`
	// Exemptions exempt namespaces from rules.
	Exemptions []Exemption `json:"exemptions,omitempty"`
	// ImageProfiles add profiles or replace the built-in profile of the same
	// name (entirely). They are matched before the built-in ones.
	ImageProfiles []ImageProfile `json:"imageProfiles,omitempty"`
	// CredentialEnvPattern is a Go regular expression matching env var names
	// whose literal values password-secret-ref moves into a Secret.
	CredentialEnvPattern string `json:"credentialEnvPattern,omitempty"`
	// PasswordNamePattern is a Go regular expression matching env var names
	// and Secret keys that hold passwords (weak-password).
	PasswordNamePattern string `json:"passwordNamePattern,omitempty"`
	// WeakPasswords replaces the built-in list of well-known default
	// passwords. An empty password is always weak.
	WeakPasswords []string `json:"weakPasswords,omitempty"`
}

// Action is a rule's action in the file: Deny, Warn, Audit or Off. YAML 1.1
// reads an unquoted Off as the boolean false, so false is read as Off too.
type Action string

// UnmarshalJSON reads a string, or false as "Off".
func (a *Action) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil && s != "true" && s != "false" {
		*a = Action(s)
		return nil
	}
	if s != "" {
		b = []byte(s) // sigs.k8s.io/yaml hands a YAML boolean to a string field as "true"/"false"
	}
	var on bool
	if err := json.Unmarshal(b, &on); err != nil {
		return fmt.Errorf("an action is one of Deny, Warn, Audit, Off, not %s", b)
	}
	if on {
		return errors.New("an action is one of Deny, Warn, Audit, Off, not true (YAML reads an unquoted On or yes as true)")
	}
	*a = Action(engine.Off)
	return nil
}

// MutationMode turns a mutation on or off. YAML 1.1 reads unquoted On and
// Off as booleans, so true and false are read as On and Off.
type MutationMode string

// The mutation modes.
const (
	On  MutationMode = "On"
	Off MutationMode = "Off"
)

// UnmarshalJSON reads a string, or a boolean as On (true) or Off (false).
func (m *MutationMode) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil && s != "true" && s != "false" {
		*m = MutationMode(s)
		return nil
	}
	if s != "" {
		b = []byte(s)
	}
	var on bool
	if err := json.Unmarshal(b, &on); err != nil {
		return fmt.Errorf("a mutation is On or Off, not %s", b)
	}
	*m = Off
	if on {
		*m = On
	}
	return nil
}

// Exemption exempts the objects of some namespaces from some rules.
type Exemption struct {
	// Rules are rule or mutation IDs; empty exempts from every one.
	Rules []string `json:"rules,omitempty"`
	// Namespaces are namespace names.
	Namespaces []string `json:"namespaces,omitempty"`
	// NamespaceSelector selects namespaces by their labels.
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// ImageProfile is what stsguard knows about one database image; see
// credentials.ImageProfile.
type ImageProfile struct {
	Name                          string         `json:"name"`
	Images                        []string       `json:"images"`
	TerminationGracePeriodSeconds int64          `json:"terminationGracePeriodSeconds,omitempty"`
	PasswordEnv                   []string       `json:"passwordEnv,omitempty"`
	PasswordRequired              bool           `json:"passwordRequired,omitempty"`
	PasswordOptionalWhen          []EnvCondition `json:"passwordOptionalWhen,omitempty"`
}

// EnvCondition matches an env var; an empty value matches any non-empty value.
type EnvCondition struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// Load reads and parses the policy file at path; see Parse.
func Load(path string) (engine.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return engine.Config{}, fmt.Errorf("reading policy: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return engine.Config{}, fmt.Errorf("policy %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes a Policy document strictly and returns the engine
// configuration it describes: engine.DefaultConfig with the policy applied.
// It returns an error naming the field (rules[weak-pasword], ...) for an
// unknown field, a wrong apiVersion or kind, an unknown rule ID, an action
// that is not Deny, Warn, Audit or Off, a mutation mode that is not On or
// Off, an invalid label selector or regular expression.
func Parse(data []byte) (engine.Config, error) {
	var p Policy
	if len(bytes.TrimSpace(data)) == 0 {
		return engine.Config{}, fmt.Errorf("the file is empty; it needs at least apiVersion: %s and kind: %s", APIVersion, Kind)
	}
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return engine.Config{}, err
	}
	cfg, errs := p.config()
	if len(errs) > 0 {
		return engine.Config{}, errs.ToAggregate()
	}
	if _, err := rules.New(cfg); err != nil {
		return engine.Config{}, err
	}
	return cfg, nil
}

// config validates p and applies it to engine.DefaultConfig.
func (p *Policy) config() (engine.Config, field.ErrorList) {
	var errs field.ErrorList
	if p.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), p.APIVersion, []string{APIVersion}))
	}
	if p.Kind != Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), p.Kind, []string{Kind}))
	}
	catalog := map[string]engine.Meta{}
	for _, m := range rules.Catalog() {
		catalog[m.ID] = m
	}
	unknown := func(path *field.Path, id string) *field.Error {
		e := field.NotFound(path, id)
		e.Detail = "no rule or mutation has this ID; `stsguard rules` lists them (docs/rules.md)"
		return e
	}
	cfg := engine.DefaultConfig()
	cfg.Actions, cfg.Mutations = map[string]engine.Action{}, map[string]bool{}

	for id, a := range p.Rules {
		path := field.NewPath("rules").Key(id)
		m, ok := catalog[id]
		switch {
		case !ok:
			errs = append(errs, unknown(path, id))
		case m.Action == engine.Mutate:
			errs = append(errs, field.Invalid(path, string(a), fmt.Sprintf("%s is a mutation: set it to On or Off under mutations", id)))
		case !slices.Contains([]engine.Action{engine.Deny, engine.Warn, engine.Audit, engine.Off}, engine.Action(a)):
			errs = append(errs, field.NotSupported(path, string(a), []string{"Deny", "Warn", "Audit", "Off"}))
		default:
			cfg.Actions[id] = engine.Action(a)
		}
	}
	for id, mode := range p.Mutations {
		path := field.NewPath("mutations").Key(id)
		m, ok := catalog[id]
		switch {
		case !ok:
			errs = append(errs, unknown(path, id))
		case m.Action != engine.Mutate:
			errs = append(errs, field.Invalid(path, string(mode), fmt.Sprintf("%s is a validating rule: set its action under rules", id)))
		case mode != On && mode != Off:
			errs = append(errs, field.NotSupported(path, string(mode), []string{"On", "Off"}))
		default:
			cfg.Mutations[id] = mode == On
		}
	}
	for i, x := range p.Exemptions {
		path := field.NewPath("exemptions").Index(i)
		ex := engine.NamespaceExemption{Rules: x.Rules, Namespaces: x.Namespaces}
		for j, id := range x.Rules {
			if _, ok := catalog[id]; !ok {
				errs = append(errs, unknown(path.Child("rules").Index(j), id))
			}
		}
		if x.NamespaceSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(x.NamespaceSelector)
			if err != nil {
				errs = append(errs, field.Invalid(path.Child("namespaceSelector"), x.NamespaceSelector, err.Error()))
			}
			ex.NamespaceSelector = sel
		}
		if len(x.Namespaces) == 0 && (ex.NamespaceSelector == nil || ex.NamespaceSelector.Empty()) {
			errs = append(errs, field.Required(path, "an exemption needs namespaces or a non-empty namespaceSelector (an empty selector would exempt every namespace; turn the rules Off instead)"))
		}
		cfg.Exemptions = append(cfg.Exemptions, ex)
	}

	compile := func(path *field.Path, expr string, into **regexp.Regexp) {
		if expr == "" {
			return
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			errs = append(errs, field.Invalid(path, expr, err.Error()))
			return
		}
		*into = re
	}
	compile(field.NewPath("credentialEnvPattern"), p.CredentialEnvPattern, &cfg.Credentials.CredentialEnv)
	compile(field.NewPath("passwordNamePattern"), p.PasswordNamePattern, &cfg.Credentials.PasswordName)
	if p.WeakPasswords != nil {
		cfg.Credentials.WeakPasswords = p.WeakPasswords
	}

	var profiles []credentials.ImageProfile
	names := map[string]bool{}
	for i, ip := range p.ImageProfiles {
		path := field.NewPath("imageProfiles").Index(i)
		if ip.Name == "" {
			errs = append(errs, field.Required(path.Child("name"), "name the profile (a built-in name replaces that profile)"))
		}
		if names[ip.Name] {
			errs = append(errs, field.Duplicate(path.Child("name"), ip.Name))
		}
		names[ip.Name] = true
		if ip.TerminationGracePeriodSeconds < 0 {
			errs = append(errs, field.Invalid(path.Child("terminationGracePeriodSeconds"), ip.TerminationGracePeriodSeconds, "must be 0 (no opinion) or more seconds"))
		}
		if ip.PasswordRequired && len(ip.PasswordEnv) == 0 {
			errs = append(errs, field.Required(path.Child("passwordEnv"), "passwordRequired needs the env var the image cannot start without as the first passwordEnv"))
		}
		rp := credentials.ImageProfile{Name: ip.Name, Images: ip.Images, TerminationGracePeriodSeconds: ip.TerminationGracePeriodSeconds,
			PasswordEnv: ip.PasswordEnv, PasswordRequired: ip.PasswordRequired}
		for _, c := range ip.PasswordOptionalWhen {
			rp.PasswordOptionalWhen = append(rp.PasswordOptionalWhen, credentials.EnvCondition{Name: c.Name, Value: c.Value})
		}
		profiles = append(profiles, rp)
	}
	for _, d := range cfg.Credentials.Profiles {
		if !names[d.Name] {
			profiles = append(profiles, d)
		}
	}
	cfg.Credentials.Profiles = profiles
	return cfg, errs
}
