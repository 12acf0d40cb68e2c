# stsguard: two commands set everything up on a fresh machine:
#   make demo   build, start a local cluster, show stsguard with kubectl on examples/
#   make test   unit, envtest integration and real-cluster (e2e) tests
# and make test-versions runs the e2e and integration tests against the
# other Kubernetes versions stsguard is tested on.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

GO        ?= go
BIN       := $(CURDIR)/bin
K8S_BIN   := $(BIN)/k8s
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X github.com/stsguard/stsguard/internal/version.Version=$(VERSION) -X github.com/stsguard/stsguard/internal/version.Commit=$(COMMIT)
STATICCHECK_VERSION := v0.8.2
IMG       ?= ghcr.io/stsguard/stsguard:$(VERSION)

export KUBEBUILDER_ASSETS := $(K8S_BIN)

.PHONY: all
all: build

.PHONY: build
build: ## Build bin/stsguard (same build settings as go test, so it shares its cache; the image build is static and -trimpath).
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/stsguard ./cmd/stsguard

# install-plugin copies bin/stsguard to $(PLUGIN_DIR)/kubectl-stsguard, the name
# kubectl looks up on PATH for `kubectl stsguard`, and links
# kubectl_complete-stsguard to it, which kubectl runs to complete its arguments.
PLUGIN_DIR ?= $(BIN)

.PHONY: install-plugin
install-plugin: build ## Install the kubectl plugin: bin/stsguard as $(PLUGIN_DIR)/kubectl-stsguard, with kubectl_complete-stsguard (default bin/; PLUGIN_DIR=$$HOME/.local/bin for one on PATH).
	mkdir -p $(PLUGIN_DIR)
	install -m 0755 $(BIN)/stsguard $(PLUGIN_DIR)/kubectl-stsguard
	ln -sf kubectl-stsguard $(PLUGIN_DIR)/kubectl_complete-stsguard
	@echo "installed $(PLUGIN_DIR)/kubectl-stsguard; with $(PLUGIN_DIR) on PATH, run: kubectl stsguard --help"

.PHONY: envtest-assets
envtest-assets: ## Build the local cluster (kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kubectl, kwok) into bin/k8s (each skipped when present).
	./hack/envtest/build.sh $(K8S_BIN)

.PHONY: helm
helm: ## Build helm (version pinned in hack/helm/go.mod) into bin/k8s for the chart tests (skipped when present).
	./hack/helm/build.sh $(K8S_BIN)

.PHONY: demo
demo: build envtest-assets ## A kubectl transcript of stsguard on a local cluster whose pods run (simulated nodes).
	$(GO) run ./hack/demo -stsguard $(BIN)/stsguard

.PHONY: cluster
cluster: build envtest-assets ## Start the local cluster with stsguard for experiments; prints the KUBECONFIG to use; Ctrl-C stops it.
	$(GO) run ./hack/cluster -stsguard $(BIN)/stsguard -kubeconfig-out $(BIN)/cluster/kubeconfig

.PHONY: test
test: envtest-assets helm ## Unit, envtest integration and real-cluster (test/e2e) tests.
	$(GO) test -count=1 -p 1 ./...  # one package at a time: the suites each run a control plane or a cluster on 2 cores

# The Kubernetes versions make test-versions tests besides v1.36.3 (make
# test's): the oldest and the newest the README names.
K8S_VERSIONS ?= v1.30.14 v1.37.2

.PHONY: test-versions
test-versions: ## The e2e and integration tests against each of K8S_VERSIONS, built into bin/k8s-<version> (each binary skipped when present).
	GO=$(GO) ./hack/test-versions.sh $(K8S_VERSIONS)

.PHONY: unit
unit: ## Unit tests only: every package outside test/ (no control plane).
	$(GO) test -count=1 $$($(GO) list ./... | grep -v '/test/')

.PHONY: fuzz
fuzz: ## Fuzz the admission paths, the manifest reader (its document splitter against YAMLReader, its deferred decoding against Parse) and the policy parser, FUZZTIME each (default 1m); make test runs their seed corpora.
	$(GO) test -run '^$$' -fuzz '^FuzzAdmissionPaths$$' -fuzztime $${FUZZTIME:-1m} ./webhook/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $${FUZZTIME:-1m} ./manifest/
	$(GO) test -run '^$$' -fuzz '^FuzzReadDecodesAsParse$$' -fuzztime $${FUZZTIME:-1m} ./manifest/
	$(GO) test -run '^$$' -fuzz '^FuzzSplitYAMLIsYAMLReader$$' -fuzztime $${FUZZTIME:-1m} ./manifest/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $${FUZZTIME:-1m} ./policy/

.PHONY: bench
bench: ## Benchmarks of one AdmissionReview through the handlers.
	$(GO) test -run '^$$' -bench . -benchmem ./webhook/

# BENCH_APISERVER_FLAGS, for example '-n 1000 -workers 8 -profile bin/stsguard.cpu.pprof'
# (hack/bench-apiserver's flags; -h lists them).
BENCH_APISERVER_FLAGS ?=

.PHONY: bench-apiserver
bench-apiserver: build envtest-assets ## Writes through a local apiserver with and without stsguard's webhooks: p50/p99, throughput of 8 clients, stsguard's CPU per review and RSS, against the targets in docs/speed.md (not part of make test).
	$(GO) run ./hack/bench-apiserver -stsguard $(BIN)/stsguard $(BENCH_APISERVER_FLAGS)

# BENCH_SCALE_FLAGS, for example '-sizes 1000,10000 -compare /tmp/stsguard-old'
# (hack/bench-scale's flags; -h lists them).
BENCH_SCALE_FLAGS ?=

.PHONY: bench-scale
bench-scale: build envtest-assets ## What stsguard costs as the cluster grows: RSS, time to ready, CPU per review, StatefulSet CREATE p50/p99 and audit --cluster time and peak memory at 1,000, 10,000 and 50,000 objects over 1,000 namespaces, and what one cached Secret costs (not part of make test; about 15 minutes).
	$(GO) run ./hack/bench-scale -stsguard $(BIN)/stsguard $(BENCH_SCALE_FLAGS)

.PHONY: bench-background
bench-background: build envtest-assets ## The background audit of stsguard serve on a local apiserver with 10,000 objects: time to the first full report, CPU per change, memory added (not part of make test).
	$(GO) run ./hack/bench-background -stsguard $(BIN)/stsguard

.PHONY: bench-faults
bench-faults: build envtest-assets helm ## stsguard as a cluster runs it (the chart, two replicas behind its Service) under 40 writes/s through an upgrade, rolling restarts, a hung replica, an apiserver restart, etcd paused and a certificate rotation: one table of failed and unjudged writes and drain times (needs root and ip(8); not part of make test).
	$(GO) run ./hack/bench-faults -stsguard $(BIN)/stsguard

.PHONY: bench-audit
bench-audit: ## stsguard audit against kube-score on 10,000 generated objects (installs kube-score into bin/).
	bench/audit.sh 10000 5

# BENCH_PEERS_FLAGS, for example '-n 1000 -logs bin/peers/logs' (hack/bench-peers's
# flags; -h lists them).
BENCH_PEERS_FLAGS ?=

.PHONY: bench-peers
bench-peers: build envtest-assets ## stsguard beside no webhook, a no-op webhook and Kyverno on one apiserver (the same writes; CPU and RSS), the audit of 10,000 objects against kyverno apply and kube-score, and the decisions table (docs/comparison.md; builds Kyverno into bin/peers the first time, up to an hour; needs root for port 443; not part of make test).
	./hack/peers/build.sh
	$(GO) build -o $(BIN)/peers/noop-webhook ./hack/bench-peers/noop
	$(GO) run ./hack/bench-peers -stsguard $(BIN)/stsguard -noop $(BIN)/peers/noop-webhook -kyverno $(BIN)/peers/kyverno \
		-kube-score $(BIN)/peers/kube-score -decisions $(BIN)/peers $(BENCH_PEERS_FLAGS)
	bench/peers/audit.sh 10000 3

.PHONY: docs
.PHONY: generate
generate: ## Regenerate the deep copies of the Go types under apis/ (controller-gen, version pinned here).
	$(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0 object paths=./apis/...

docs: ## Regenerate docs/rules.md from the rule registry.
	$(GO) run ./cmd/stsguard rules -o markdown > docs/rules.md

.PHONY: chart
chart: helm ## Regenerate from the chart what comes from it: deploy/'s generated files; into it: the rule IDs of values.schema.json, the dashboard.
	./hack/helm/schema.sh
	./hack/helm/deploy.sh
	if [[ -f deploy/grafana/stsguard.json ]]; then cp deploy/grafana/stsguard.json charts/stsguard/dashboards/stsguard.json; fi

.PHONY: lint
lint: ## gofmt, go vet and staticcheck.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

.PHONY: krew
krew: ## The krew archives of kubectl-stsguard for each platform and their filled-in manifest, in dist/krew (VERSION=vX.Y.Z).
	hack/krew/archives.sh $(VERSION) dist/krew

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine; not part of make test).
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMG) .

.PHONY: clean
clean: ## Remove bin/ except the envtest assets.
	rm -f $(BIN)/stsguard $(BIN)/kubectl-stsguard $(BIN)/kubectl_complete-stsguard
