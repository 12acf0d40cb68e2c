package audit_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/stsguard/stsguard/audit"
	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/rules"
)

// A StatefulSet whose serviceName names a Service that is not headless,
// replayed as kubectl apply -f would send it: the Service is created first
// and keeps its cluster IP, so the StatefulSet is denied.
func ExampleRun() {
	const manifests = `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, readinessProbe: {tcpSocket: {port: 80}}}]
`
	e, err := rules.New(engine.DefaultConfig())
	if err != nil {
		panic(err)
	}
	report, err := audit.Run(context.Background(), e, audit.Source{Files: []string{"-"}, Stdin: strings.NewReader(manifests)})
	if err != nil {
		panic(err)
	}
	for _, d := range report.Objects {
		fmt.Printf("%s %s/%s denied=%t deny=%v\n", d.Operation, d.Kind, d.Name, d.Denied, d.Deny)
	}
	fmt.Println("denied:", report.Summary.Denied)
	// Output:
	// CREATE Service/web denied=false deny=[]
	// CREATE StatefulSet/web denied=true deny=[headless-service-not-headless]
	// denied: 1
}
