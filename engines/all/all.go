// Package all links every engine into a program: each registers itself
// (its module, verbs and journal engines) from init. cmd/cairn imports it,
// and so do the tree-wide tests that ask every module (internal/hygiene).
// A new engine is one line here.
package all

import (
	_ "github.com/cairnhq/cairn/engines/build" // Dockerfiles into the image store, RUN steps in runc, a layer cache
	_ "github.com/cairnhq/cairn/engines/capture"
	_ "github.com/cairnhq/cairn/engines/deploy"    // a one-host BOSH Director: releases, stemcells, manifests, canaries, resurrector
	_ "github.com/cairnhq/cairn/engines/discovery" // Consul's HTTP API and DNS: services, checks, KV, sessions
	_ "github.com/cairnhq/cairn/engines/infra"     // Terraform-style plan and apply over HCL, with drift detection
	_ "github.com/cairnhq/cairn/engines/kv"
	_ "github.com/cairnhq/cairn/engines/kv/etcdapi" // the etcd v3 API of the KV engine (--etcd)
	_ "github.com/cairnhq/cairn/engines/logs"       // Fluentd-style log collection: forward, syslog, HTTP; the logs verb
	_ "github.com/cairnhq/cairn/engines/metrics"    // Prometheus TSDB and PromQL, collectors, DogStatsD, alerts
	_ "github.com/cairnhq/cairn/engines/runtime"    // images and containers run by runc, with Docker's verbs
)
