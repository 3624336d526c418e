package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/engines/runtime/image/imagetest"
)

// benchRelease is a busybox httpd job: an ERB page, a bpm.yml.
var benchRelease = map[string]string{
	"release.MF": "name: bench\nversion: \"1\"\n",
	"jobs/httpd/spec": "name: httpd\ntemplates:\n  index.html.erb: htdocs/index.html\n  bpm.yml.erb: config/bpm.yml\n" +
		"properties:\n  greeting: {default: hello}\n",
	"jobs/httpd/templates/index.html.erb": "<%= p(\"greeting\") %> from <%= spec.name %>/<%= spec.index %>\n",
	"jobs/httpd/templates/bpm.yml.erb":    "processes:\n- name: httpd\n  executable: /bin/httpd\n  args: [-f, -p, \"80\", -h, /var/vcap/jobs/httpd/htdocs]\n",
}

func benchManifest(greeting string) string {
	group := func(name string) string {
		return fmt.Sprintf("- name: %s\n  instances: 10\n  jobs: [{name: httpd, release: bench, properties: {greeting: %s}}]\n  stemcell: default\n  persistent_disk: 1\n  networks: [{name: default}]\n", name, greeting)
	}
	return "name: bench\nreleases: [{name: bench, version: latest}]\nstemcells: [{alias: default, os: bench, version: latest}]\n" +
		"update: {canaries: 1, max_in_flight: 10, canary_watch_time: 0, update_watch_time: 0}\ninstance_groups:\n" + group("web") + group("api")
}

// runDeploy measures issue 16's targets: a 20-instance deployment (two
// groups, max_in_flight 10) created from nothing and a property change
// rolled across it, against the runtime's own detached run of 20
// containers 10 at a time; and the resurrector's time from a killed
// process to HTTP served again.
func runDeploy(ctx context.Context, b *bench) error {
	if os.Geteuid() != 0 {
		b.skip("deploy", "needs root (containers)")
		return nil
	}
	if _, err := exec.LookPath("runc"); err != nil {
		b.skip("deploy", "needs runc (Debian runc)")
		return nil
	}
	const bridge, subnet = "cairnbd0", "10.87.0.0/24"
	archive := filepath.Join(b.tmp, "busybox-deploy.tar")
	if err := imagetest.WriteBusybox(archive, "busybox:latest", nil); err != nil {
		return err
	}
	d, err := b.newDaemon(filepath.Join(b.tmp, "deploy-data"))
	if err != nil {
		return err
	}
	d.Extra = append(d.Extra, "--runtime-bridge", bridge, "--runtime-subnet", subnet, "--deploy-health-interval", "100ms")
	if _, _, err := d.start(ctx); err != nil {
		return err
	}
	defer func() {
		_ = exec.Command("ip", "link", "del", bridge).Run()
		_ = exec.Command("iptables", "-t", "nat", "-D", "POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE").Run()
		_ = exec.Command("iptables", "-D", "FORWARD", "-i", bridge, "-j", "ACCEPT").Run()
		_ = exec.Command("iptables", "-D", "FORWARD", "-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT").Run()
	}()
	c, err := d.Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	defer func() {
		_, _ = c.Do(context.Background(), "deploy delete bench")
		res, err := c.Do(context.Background(), "ps all")
		if err != nil {
			return
		}
		for _, row := range res.Rows {
			var ps struct{ Names string }
			if json.Unmarshal(row, &ps) == nil && ps.Names != "" {
				_, _ = c.Do(context.Background(), "rm "+ps.Names+" force")
			}
		}
	}()
	do := func(stmt string) (*client.Result, error) {
		res, err := c.Do(ctx, stmt)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", stmt, err)
		}
		return res, nil
	}
	if _, err := do("image import " + strconv.Quote(archive) + " tag=busybox"); err != nil {
		return err
	}
	if _, err := do("stemcell upload busybox name=bench version=1"); err != nil {
		return err
	}
	rel := filepath.Join(b.tmp, "bench-release")
	for name, content := range benchRelease {
		p := filepath.Join(rel, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	if _, err := do("release upload " + strconv.Quote(rel)); err != nil {
		return err
	}
	man := filepath.Join(b.tmp, "bench.yml")
	deploy := func(greeting string) (float64, error) {
		if err := os.WriteFile(man, []byte(benchManifest(greeting)), 0o644); err != nil {
			return 0, err
		}
		start := time.Now()
		_, err := do("deploy " + strconv.Quote(man))
		return time.Since(start).Seconds(), err
	}
	create, err := deploy("hello")
	if err != nil {
		return err
	}
	update, err := deploy("changed")
	if err != nil {
		return err
	}
	// The runtime alone: 20 detached containers, 10 at a time, each with
	// the same command, network and binds an instance has.
	start := time.Now()
	sem := make(chan struct{}, 10)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := c.Do(ctx, fmt.Sprintf("run busybox name=plain%d detach -- httpd -f -p 80", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("20 plain runs: %w", err)
	}
	plain := time.Since(start).Seconds()
	for i := range 20 {
		_, _ = c.Do(ctx, fmt.Sprintf("rm plain%d force", i))
	}
	b.add("deploy: 20 instances (2 groups, max_in_flight 10, watch 0) from nothing", "", fmt.Sprintf("%.2f s", create), nil)
	b.add("deploy: a property change rolled across the 20", "", fmt.Sprintf("%.2f s", update), nil)
	b.add("runtime alone: 20 run detach, 10 at a time", "", fmt.Sprintf("%.2f s (%.0f%% of the create)", plain, 100*plain/create), nil)
	b.add("deploy: overhead per instance over the runtime's run", "", fmt.Sprintf("%.0f ms", 1000*(create-plain)/20), nil)

	// Resurrection: kill web/3's process, time until it serves again.
	res, err := do("deploy instances bench")
	if err != nil {
		return err
	}
	var target struct{ Instance, Container, IP string }
	for _, row := range res.Rows {
		var in struct {
			Instance, Container, IP string
		}
		if json.Unmarshal(row, &in) == nil && in.Instance == "web/3" {
			target = in
		}
	}
	if target.Container == "" {
		return fmt.Errorf("deploy instances: no web/3")
	}
	if _, err := do("kill " + target.Container + " signal=KILL"); err != nil {
		return err
	}
	killed := time.Now()
	hc := &http.Client{Timeout: 200 * time.Millisecond}
	for {
		res, err := do("deploy instances bench")
		if err != nil {
			return err
		}
		ip := ""
		for _, row := range res.Rows {
			var in struct {
				Instance     string `json:"instance"`
				IP           string `json:"ip"`
				ProcessState string `json:"process_state"`
			}
			if json.Unmarshal(row, &in) == nil && in.Instance == "web/3" && in.ProcessState == "running" {
				ip = in.IP
			}
		}
		if ip != "" {
			if r, err := hc.Get("http://" + ip + "/index.html"); err == nil {
				r.Body.Close()
				if r.StatusCode == 200 {
					break
				}
			}
		}
		if time.Since(killed) > 60*time.Second {
			return fmt.Errorf("web/3 did not come back within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.add("resurrection: killed process to HTTP served again (health every 100 ms)", "", ms(time.Since(killed).Seconds()), nil)
	return nil
}
