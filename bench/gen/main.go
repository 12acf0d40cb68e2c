package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
)

const set = `apiVersion: v1
kind: Service
metadata:
  name: db-%[1]d
  namespace: team-%[2]d
  labels: {app: db-%[1]d}
spec:
  clusterIP: %[3]s
  selector: {app: db-%[1]d}
  ports:
  - name: mysql
    port: 3306
---
apiVersion: v1
kind: Secret
metadata:
  name: db-%[1]d
  namespace: team-%[2]d
type: Opaque
stringData:
  password: s3cret-%[1]d-Qx7pLm2v
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db-%[1]d
  namespace: team-%[2]d
  labels: {app: db-%[1]d, tier: database}
spec:
  serviceName: db-%[1]d
  replicas: 3
  selector:
    matchLabels: {app: db-%[1]d}
  template:
    metadata:
      labels: {app: db-%[1]d, tier: database}
    spec:
      terminationGracePeriodSeconds: 120
      containers:
      - name: mysql
        image: mysql:8.4
        ports:
        - containerPort: 3306
          name: mysql
        env:
        - name: MYSQL_ROOT_PASSWORD
          valueFrom:
            secretKeyRef: {name: db-%[1]d, key: password}
        - name: MYSQL_PASSWORD
          %[4]s
        resources:
          requests: {cpu: 500m, memory: 1Gi}
          limits: {memory: 1Gi}
%[5]s        volumeMounts:
        - name: data
          mountPath: /var/lib/mysql
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 10Gi
---
`

// defaultClass is the cluster's default StorageClass, as every cluster has.
const defaultClass = `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: csi.example.com
allowVolumeExpansion: true
---
`

func main() {
	n := flag.Int("n", 10000, "number of objects (rounded up to 1 + a multiple of 3)")
	flag.Parse()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprint(w, defaultClass)
	for i := 0; 1+i*3 < *n; i++ {
		clusterIP, password, probe := "None", "valueFrom: {secretKeyRef: {name: db-"+fmt.Sprint(i)+", key: password}}", "        readinessProbe:\n          tcpSocket: {port: 3306}\n"
		switch i % 9 {
		case 3:
			probe = ""
		case 6:
			password = fmt.Sprintf("value: literal-%d-Zt8q", i)
		case 8:
			clusterIP = `""`
		}
		fmt.Fprintf(w, set, i, i*3/100, clusterIP, password, probe)
	}
}
