"""Packaging and deployment: the Kubernetes manifests, the systemd unit, the
Dockerfile, the example configs, `make install` and `make run` (scripts/run.sh).

Nothing here needs a cluster, systemd as PID 1 or a container engine: the
manifests are read with python3-yaml and checked for what a rollout depends
on; the image's build stage is replayed from the build context; the unit is
checked by `systemd-analyze verify` when that exists.

The admin listener (`[admin] address`, --admin) and the drain options
(drain_delay, shutdown_timeout) are used by these files before every h2gw
binary has them: when `h2gw --help` does not list --admin, the example
configs are validated without those keys, and with them once it does."""

import configparser
import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml

from conftest import H2GW_BIN, ORIGIN_BIN, REPO, SANITIZER_MARKERS, SLOW, sanitizer_env

K8S_DIR = os.path.join(REPO, "deploy", "kubernetes")
EXAMPLES_DIR = os.path.join(REPO, "config", "examples")
UNIT = os.path.join(REPO, "deploy", "systemd", "h2gw.service")
ADMIN_PORT = 9901
ADMIN_KEYS = ("drain_delay", "shutdown_timeout")


# --------------------------------------------------------------------------
# Helpers


def help_text():
    p = subprocess.run([H2GW_BIN, "--help"], capture_output=True, timeout=20 * SLOW,
                       env=sanitizer_env())
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def has_admin():
    return re.search(r"^  --admin ", help_text(), re.M) is not None


def read_ini(text):
    """An h2gw config as {section: {key: value}} (last value of a repeated key)."""
    cp = configparser.ConfigParser(strict=False, interpolation=None,
                                   comment_prefixes=("#", ";"), inline_comment_prefixes=None)
    cp.optionxform = str
    cp.read_string(text)
    return {s: dict(cp.items(s)) for s in cp.sections()}


def seconds(value):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", value.strip())
    assert m, "not a duration: %r" % value
    n = int(m.group(1))
    return {"ms": n / 1000.0, "s": n, None: n, "m": n * 60, "h": n * 3600}[m.group(2)]


def shutdown_budget(conf):
    """drain_delay + shutdown_timeout of a config, in seconds (both required)."""
    gw = conf.get("gateway", {})
    for key in ADMIN_KEYS:
        assert key in gw, "[gateway] %s missing" % key
    return seconds(gw["drain_delay"]) + seconds(gw["shutdown_timeout"])


def load_manifest(name):
    with open(os.path.join(K8S_DIR, name)) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    assert docs, "%s has no documents" % name
    for d in docs:
        assert "apiVersion" in d and "kind" in d and d.get("metadata", {}).get("name"), d
    return docs


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind):
    found = by_kind(docs, kind)
    assert len(found) == 1, "want one %s, found %d" % (kind, len(found))
    return found[0]


def h2gw_container(deployment):
    spec = deployment["spec"]["template"]["spec"]
    found = [c for c in spec["containers"] if c["name"] == "h2gw"]
    assert len(found) == 1, "no container named h2gw in %s" % deployment["metadata"]["name"]
    return found[0]


def port_number(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    raise AssertionError("container %s has no port named %r" % (container["name"], port))


def prestop_sleep(container):
    """Seconds a container's preStop hook sleeps (exec sleep N or the sleep action)."""
    hook = container.get("lifecycle", {}).get("preStop")
    assert hook, "container %s has no preStop hook" % container["name"]
    if "sleep" in hook:
        return int(hook["sleep"]["seconds"])
    cmd = hook["exec"]["command"]
    if len(cmd) >= 3 and cmd[1] == "-c":
        cmd = shlex.split(cmd[2])
    assert cmd[0].endswith("sleep"), "preStop of %s is not a sleep: %r" % (container["name"], cmd)
    return int(cmd[1])


def mounted_config(docs, deployment):
    """The h2gw config the Deployment's h2gw container reads: the file --config
    names, found in a ConfigMap of the same manifest through its volume."""
    c = h2gw_container(deployment)
    argv = c.get("command", []) + c.get("args", [])
    assert "--config" in argv, "h2gw container has no --config: %r" % argv
    path = argv[argv.index("--config") + 1]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    for m in c["volumeMounts"]:
        mount = m["mountPath"].rstrip("/") + "/"
        if not path.startswith(mount):
            continue
        vol = volumes[m["name"]]
        assert "configMap" in vol, "%s is not from a ConfigMap" % path
        cms = [d for d in by_kind(docs, "ConfigMap")
               if d["metadata"]["name"] == vol["configMap"]["name"]]
        assert cms, "ConfigMap %s is not in the manifest" % vol["configMap"]["name"]
        return cms[0]["data"][path[len(mount):]]
    raise AssertionError("%s is on no volume of the h2gw container" % path)


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def make_env():
    """The environment for a nested make: without the outer make's jobserver."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(k, None)
    return env


# --------------------------------------------------------------------------
# Kubernetes manifests

MANIFESTS = {
    "sidecar.yaml": ({"ConfigMap", "Deployment", "Service"}, "sidecar.conf"),
    "edge.yaml": ({"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                   "PodDisruptionBudget"}, "edge.conf"),
}


def test_every_manifest_is_checked():
    assert sorted(os.path.basename(p) for p in glob.glob(os.path.join(K8S_DIR, "*.yaml"))) \
        == sorted(MANIFESTS)


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_manifest_kinds_and_config(name):
    kinds, example = MANIFESTS[name]
    docs = load_manifest(name)
    assert kinds <= {d["kind"] for d in docs}, (name, [d["kind"] for d in docs])
    dep = one(docs, "Deployment")
    assert dep["apiVersion"] == "apps/v1"
    # The ConfigMap carries the example config verbatim, so the file that
    # --check validates (below) is the one that ships.
    with open(os.path.join(EXAMPLES_DIR, example)) as f:
        assert mounted_config(docs, dep) == f.read(), \
            "the ConfigMap in %s differs from config/examples/%s" % (name, example)


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_manifest_deployment(name):
    docs = load_manifest(name)
    dep = one(docs, "Deployment")
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items(), \
        "the Deployment's selector does not match its pods' labels"

    c = h2gw_container(dep)
    conf = read_ini(mounted_config(docs, dep))
    admin = conf.get("admin", {}).get("address", "")
    assert admin.endswith(":%d" % ADMIN_PORT), "[admin] address %r is not on port %d" % (
        admin, ADMIN_PORT)
    assert not admin.startswith("127."), "the kubelet probes the pod IP, not loopback"

    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet")
        assert get, "h2gw has no %s.httpGet" % probe
        assert get["path"] == path, (probe, get)
        assert port_number(c, get["port"]) == ADMIN_PORT, (probe, get)

    # Shutdown fits the grace period: preStop, then SIGTERM, drain_delay and
    # shutdown_timeout, all before the kubelet's SIGKILL.
    pre = prestop_sleep(c)
    budget = shutdown_budget(conf)
    grace = pod["terminationGracePeriodSeconds"]
    assert grace >= pre + budget, "terminationGracePeriodSeconds %d < preStop %d + %g" % (
        grace, pre, budget)

    for ctr in pod["containers"]:
        res = ctr.get("resources", {})
        assert res.get("requests") and res.get("limits"), \
            "container %s needs resource requests and limits" % ctr["name"]
    assert c["securityContext"].get("runAsUser", 0) != 0
    assert pod["securityContext"]["runAsNonRoot"] is True

    # The listeners in the config are container ports, and every mounted
    # volume comes from a Secret or the ConfigMap.
    container_ports = {p["containerPort"] for p in c["ports"]}
    for section, keys in conf.items():
        if section.startswith("listen"):
            port = int(keys["address"].rsplit(":", 1)[1])
            assert port in container_ports, "[%s] port %d is not a containerPort" % (section, port)
    volumes = {v["name"]: v for v in pod["volumes"]}
    kinds = set()
    for m in c["volumeMounts"]:
        kinds |= {"secret", "configMap"} & set(volumes[m["name"]])
        assert m.get("readOnly") is True, m
    assert kinds == {"secret", "configMap"}, "h2gw mounts %r" % kinds
    tls_dirs = {os.path.dirname(v) for s in conf.values() for k, v in s.items()
                if k in ("tls_cert", "tls_key", "tls_ticket_key_file")}
    secret_mounts = {m["mountPath"].rstrip("/") for m in c["volumeMounts"]
                     if "secret" in volumes[m["name"]]}
    assert tls_dirs and tls_dirs <= secret_mounts, (tls_dirs, secret_mounts)

    # Every Service selects these pods and targets ports they have.
    for svc in by_kind(docs, "Service"):
        assert svc["spec"]["selector"].items() <= labels.items(), svc["metadata"]["name"]
        for p in svc["spec"]["ports"]:
            port_number(c, p["targetPort"])


def test_sidecar_app_outlives_the_drain():
    """Both containers get SIGTERM together after their preStop hooks: the app
    must still answer while h2gw finishes its in-flight requests."""
    docs = load_manifest("sidecar.yaml")
    dep = one(docs, "Deployment")
    c = h2gw_container(dep)
    budget = prestop_sleep(c) + shutdown_budget(read_ini(mounted_config(docs, dep)))
    apps = [x for x in dep["spec"]["template"]["spec"]["containers"] if x["name"] != "h2gw"]
    assert apps, "no app container beside h2gw"
    for app in apps:
        assert prestop_sleep(app) >= budget, (app["name"], budget)
    backend = read_ini(mounted_config(docs, dep))["backend default"]["server"]
    assert backend.startswith("127.0.0.1:"), "a sidecar's backend is in its own pod"


def test_edge_service_hpa_pdb():
    docs = load_manifest("edge.yaml")
    dep = one(docs, "Deployment")
    labels = dep["spec"]["template"]["metadata"]["labels"]

    svc = one(docs, "Service")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert {p["port"] for p in svc["spec"]["ports"]} == {443, 80}

    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == \
        ("apps/v1", "Deployment", dep["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    cpu = [m for m in hpa["spec"]["metrics"]
           if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
    assert cpu, "the HPA does not scale on CPU"
    # Utilization is measured against the request: there must be one.
    assert h2gw_container(dep)["resources"]["requests"]["cpu"]

    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), \
        "the PodDisruptionBudget selects no pod of the Deployment"
    if "minAvailable" in pdb["spec"]:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], \
            "minAvailable >= minReplicas would block every node drain"


# --------------------------------------------------------------------------
# Example configs


def example_configs():
    return sorted(glob.glob(os.path.join(EXAMPLES_DIR, "*.conf")))


def test_examples_exist():
    names = {os.path.basename(p) for p in example_configs()}
    assert {"container.conf", "sidecar.conf", "edge.conf", "systemd.conf"} <= names


@pytest.mark.parametrize("path", example_configs(), ids=os.path.basename)
def test_example_config_validates(path, tmp_path):
    """`h2gw --check` passes on each example, with the files it names (under
    /etc/h2gw) made in a scratch directory. Without an admin listener in this
    binary, the [admin] section and the drain keys are left out first."""
    with open(path) as f:
        text = f.read()
    conf = read_ini(text)
    assert conf.get("admin", {}).get("address"), "%s has no [admin] address" % path
    shutdown_budget(conf)

    files = set(re.findall(r"^\s*(?:tls_cert|tls_key|tls_ticket_key_file)\s*=\s*(\S+)",
                           text, re.M))
    subprocess.run(["bash", os.path.join(REPO, "scripts", "gen-cert.sh"), str(tmp_path / "pair"),
                    "localhost"], check=True, capture_output=True, timeout=30)
    for name in files:
        assert name.startswith("/etc/h2gw/"), name
        dest = tmp_path / name.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if "ticket" in name:
            dest.write_bytes(os.urandom(80))
        else:
            src = "server.key" if name.endswith(".key") else "server.crt"
            shutil.copy(tmp_path / "pair" / src, dest)
        text = text.replace(name, str(dest))

    if not has_admin():
        out, section = [], None
        for line in text.splitlines(True):
            m = re.match(r"\[([^\]]+)\]", line)
            if m:
                section = m.group(1).strip()
            if section == "admin" or re.match(r"\s*(%s)\s*=" % "|".join(ADMIN_KEYS), line):
                continue
            out.append(line)
        text = "".join(out)
    conf_path = tmp_path / os.path.basename(path)
    conf_path.write_text(text)
    p = subprocess.run([H2GW_BIN, "--config", str(conf_path), "--check"], capture_output=True,
                       timeout=20 * SLOW, env=sanitizer_env())
    assert p.returncode == 0, "%s: %s" % (path, p.stderr.decode())


# --------------------------------------------------------------------------
# systemd


def unit_lines():
    """The unit's Key=Value lines as [(key, value)], in order."""
    pairs = []
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", ";", "[")) and "=" in line:
                k, v = line.split("=", 1)
                pairs.append((k.strip(), v.strip()))
    return pairs


def test_systemd_unit():
    pairs = unit_lines()
    keys = dict(pairs)
    assert keys["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert keys["LimitNOFILE"] == "1048576"
    assert keys["KillSignal"] == "SIGTERM"
    assert "--config /etc/h2gw/h2gw.conf" in keys["ExecStart"]
    for k in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert keys[k] == "yes", k
    assert keys["ProtectSystem"] == "strict"
    assert keys["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    assert keys["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    assert "RestrictAddressFamilies" in keys
    assert keys.get("DynamicUser") == "yes" or keys.get("User"), "the unit runs as root"

    # systemctl stop waits longer than the drain of the config it runs.
    with open(os.path.join(EXAMPLES_DIR, "systemd.conf")) as f:
        budget = shutdown_budget(read_ini(f.read()))
    assert seconds(keys["TimeoutStopSec"]) > budget, (keys["TimeoutStopSec"], budget)


def test_systemd_analyze_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed")
    # verify checks that ExecStart's binary exists: point it at the one built.
    with open(UNIT) as f:
        text = f.read().replace("/usr/local/bin/h2gw", H2GW_BIN)
    unit = tmp_path / "h2gw.service"
    unit.write_text(text)
    p = subprocess.run([tool, "verify", "--man=no", str(unit)], capture_output=True,
                       timeout=60)
    assert p.returncode == 0 and not p.stderr.strip(), p.stderr.decode()


# --------------------------------------------------------------------------
# Dockerfile


def dockerfile():
    """The Dockerfile as a list of (INSTRUCTION, arguments), continuations joined."""
    with open(os.path.join(REPO, "Dockerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages():
    result = []
    for word, rest in dockerfile():
        if word == "FROM":
            result.append([])
        result[-1].append((word, rest))
    return result


def healthcheck_argv():
    hc = [rest for word, rest in dockerfile() if word == "HEALTHCHECK"]
    assert len(hc) == 1
    cmd = hc[0][hc[0].index("CMD") + 3:].strip()
    return json.loads(cmd)


def test_dockerfile_stages():
    st = stages()
    assert len(st) == 2, "want a build stage and a runtime stage"
    for s in st:
        assert s[0][1].split()[0] == "debian:bookworm-slim", s[0]
    build, runtime = st
    build_run = " ".join(rest for w, rest in build if w == "RUN")
    for pkg in ("libuv1-dev", "libnghttp2-dev", "libssl-dev", "libinih-dev", "node-llhttp"):
        assert pkg in build_run, pkg
    assert "make" in build_run

    runtime_run = " ".join(rest for w, rest in runtime if w == "RUN")
    installed = set()
    for command in runtime_run.split("&&"):
        words = command.split()
        if words[:2] == ["apt-get", "install"]:
            installed |= {w for w in words[2:] if not w.startswith("-")}
    assert installed == {"libuv1", "libnghttp2-14", "libssl3", "libinih1"}, installed
    assert "--no-install-recommends" in runtime_run
    assert "rm -rf /var/lib/apt/lists" in runtime_run

    words = {w for w, _ in runtime}
    assert {"USER", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT"} <= words
    user = [rest for w, rest in runtime if w == "USER"][-1]
    assert user.split(":")[0] not in ("0", "root"), user
    exposed = {int(p.split("/")[0]) for w, rest in runtime if w == "EXPOSE"
               for p in rest.split()}
    with open(os.path.join(EXAMPLES_DIR, "container.conf")) as f:
        conf = read_ini(f.read())
    for keys in conf.values():
        if "address" in keys:
            assert int(keys["address"].rsplit(":", 1)[1]) in exposed, keys
    entry = json.loads([rest for w, rest in runtime if w == "ENTRYPOINT"][-1])
    assert entry[0] == "/usr/local/bin/h2gw" and "--config" in entry, entry
    hc = " ".join(healthcheck_argv())
    assert "/livez" in hc and str(ADMIN_PORT) in hc, hc


def test_runtime_packages_cover_the_binary():
    """Every shared library build/h2gw links comes from a package the runtime
    stage installs (or from libc6, which the base image has)."""
    if shutil.which("ldd") is None or shutil.which("dpkg") is None:
        pytest.skip("ldd or dpkg missing")
    out = subprocess.run(["ldd", H2GW_BIN], capture_output=True, text=True, check=True).stdout
    libs = re.findall(r"=> (/\S+)", out)
    owners = set()
    for lib in libs:
        real = os.path.realpath(lib)
        p = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True)
        if p.returncode != 0:
            p = subprocess.run(["dpkg", "-S", real], capture_output=True, text=True)
        if p.returncode != 0:
            continue  # a sanitizer runtime or a library outside Debian's packages
        owners.add(p.stdout.split(":")[0])
    allowed = {"libuv1", "libnghttp2-14", "libssl3", "libinih1", "libc6", "libgcc-s1",
               "libstdc++6"}
    assert owners, out
    assert owners <= allowed | {o for o in owners if o.startswith(("libasan", "libubsan"))}, \
        owners - allowed


@pytest.mark.parametrize("path,ok", [("/status/200", True), ("/status/503", False)])
def test_healthcheck_command(origin, path, ok):
    """The image's HEALTHCHECK command, pointed at the test origin instead of
    the admin listener: a 200 passes, anything else fails."""
    cmd = [a.replace(str(ADMIN_PORT), str(origin.port)).replace("/livez", path)
           for a in healthcheck_argv()]
    p = subprocess.run(cmd, capture_output=True, timeout=10)
    assert (p.returncode == 0) == ok, (cmd, p.returncode, p.stderr)


def test_healthcheck_command_fails_when_nothing_listens():
    argv = healthcheck_argv()
    port = free_ports(1)[0]
    p = subprocess.run([a.replace(str(ADMIN_PORT), str(port)) for a in argv],
                       capture_output=True, timeout=10)
    assert p.returncode != 0


def dockerignored(rel, patterns):
    for pat in patterns:
        pat = pat.rstrip("/")
        if pat.startswith("**/"):
            if any(part == pat[3:] for part in rel.split("/")):
                return True
        elif rel == pat or rel.startswith(pat + "/") or re.fullmatch(
                pat.replace(".", r"\.").replace("*", "[^/]*"), os.path.basename(rel)):
            return True
    return False


def test_image_build_stage_from_the_build_context(tmp_path):
    """What the build stage does, on the files .dockerignore lets through:
    make, make install into a stage, the staged binary runs."""
    with open(os.path.join(REPO, ".dockerignore")) as f:
        patterns = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    ctx = tmp_path / "ctx"
    for root, dirs, files in os.walk(REPO):
        rel_root = os.path.relpath(root, REPO)
        dirs[:] = [d for d in dirs if d != ".git" and not dockerignored(
            os.path.normpath(os.path.join(rel_root, d)), patterns)]
        for name in files:
            rel = os.path.normpath(os.path.join(rel_root, name))
            if name == ".git" or dockerignored(rel, patterns):
                continue
            dest = ctx / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.join(root, name), dest)
    assert not (ctx / "build").exists() and not (ctx / "test").exists()
    # The COPY sources of the runtime stage are in the context too.
    for w, rest in stages()[1]:
        if w == "COPY" and not rest.startswith("--from"):
            assert (ctx / rest.split()[0]).exists(), rest

    stage = tmp_path / "stage"
    env = make_env()
    for argv in (["make", "-j2", "build/h2gw"],
                 ["make", "install", "DESTDIR=%s" % stage, "PREFIX=/usr/local"]):
        p = subprocess.run(argv, cwd=ctx, capture_output=True, timeout=300, env=env)
        assert p.returncode == 0, (argv, p.stdout.decode()[-2000:], p.stderr.decode()[-2000:])
    p = subprocess.run([str(stage / "usr/local/bin/h2gw"), "--version"], capture_output=True,
                       timeout=10)
    assert p.returncode == 0 and p.stdout.startswith(b"h2gw "), p


# --------------------------------------------------------------------------
# make install and the man page


def test_make_install(tmp_path):
    dest = tmp_path / "dest"
    p = subprocess.run(["make", "install", "DESTDIR=%s" % dest, "PREFIX=/usr"], cwd=REPO,
                       capture_output=True, timeout=300, env=make_env())
    assert p.returncode == 0, p.stderr.decode()
    usr = dest / "usr"
    for rel in ("bin/h2gw", "share/man/man1/h2gw.1", "share/h2gw/h2gw.conf",
                "share/h2gw/examples/sidecar.conf", "share/h2gw/examples/systemd.conf",
                "lib/systemd/system/h2gw.service", "lib/sysusers.d/h2gw.conf"):
        assert (usr / rel).is_file(), rel
    assert os.access(usr / "bin/h2gw", os.X_OK)
    assert not (dest / "etc").exists(), "make install must not write a config into /etc"
    unit = (usr / "lib/systemd/system/h2gw.service").read_text()
    assert "ExecStart=/usr/bin/h2gw " in unit and "/usr/local" not in unit

    for flag, want in (("--version", b"h2gw "), ("--help", b"--listen")):
        p = subprocess.run([str(usr / "bin/h2gw"), flag], capture_output=True, timeout=10)
        assert p.returncode == 0 and want in p.stdout, (flag, p)


def test_man_page_lists_every_flag():
    with open(os.path.join(REPO, "doc", "h2gw.1")) as f:
        man = f.read().replace("\\-", "-")
    flags = set(re.findall(r"^  (--[a-z0-9-]+)", help_text(), re.M))
    assert flags
    missing = sorted(f for f in flags if not re.search(re.escape(f) + r"(?![a-z0-9-])", man))
    assert not missing, "doc/h2gw.1 does not describe %s" % ", ".join(missing)
    for section in ("NAME", "SYNOPSIS", "OPTIONS", "SIGNALS", "FILES", "EXIT STATUS"):
        assert ".SH %s" % section in man, section


def test_man_page_renders_without_warnings():
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff not installed")
    p = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", os.path.join(REPO, "doc", "h2gw.1")],
                       capture_output=True, timeout=30)
    assert p.returncode == 0 and not p.stderr.strip(), p.stderr.decode()


# --------------------------------------------------------------------------
# make run (scripts/run.sh)

# Resets SIGINT to its default before exec: a shell started with SIGINT
# ignored (as a background job is) could not trap it.
_EXEC_WITH_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                     "os.execvp(sys.argv[1], sys.argv[1:])")


class RunScript:
    """bash scripts/run.sh in its own process group, output in a file."""

    def __init__(self, tmp_path, ports):
        self.ports = ports
        self.out_path = tmp_path / "run.out"
        self._out = open(self.out_path, "wb")
        env = sanitizer_env()
        env.update(H2GW_PORT=str(ports[0]), H2GW_TLS_PORT=str(ports[1]),
                   ORIGIN_PORT=str(ports[2]), H2GW_ADMIN_PORT=str(ports[3]),
                   H2GW_BIN=H2GW_BIN, ORIGIN_BIN=ORIGIN_BIN)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _EXEC_WITH_SIGINT, "bash", "scripts/run.sh"], cwd=REPO,
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)

    def output(self):
        self._out.flush()
        return self.out_path.read_text(errors="replace")

    def wait_for(self, text, timeout):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if self.proc.poll() is not None:
                return text in self.output()
            time.sleep(0.05)
        return False

    def close(self):
        """Whatever the test did: the script stops its children on SIGTERM; if
        it does not exit, its process group (this test's own) is killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30 * SLOW)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._out.close()


def port_is_free(port):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_make_run_serves_and_stops_cleanly(tmp_path, sig):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    ports = free_ports(4)
    run = RunScript(tmp_path, ports)
    try:
        assert run.wait_for("Ctrl-C stops both", 30), \
            "run.sh did not report running:\n" + run.output()
        assert "127.0.0.1:%d" % ports[0] in run.output()
        for argv in (["curl", "-s", "--http2-prior-knowledge",
                      "http://127.0.0.1:%d/echo" % ports[0]],
                     ["curl", "-sk", "https://127.0.0.1:%d/echo" % ports[1]]):
            p = subprocess.run(argv, capture_output=True, timeout=20 * SLOW)
            assert p.returncode == 0 and b'"target":"/echo"' in p.stdout, (argv, p)
        # Ctrl-C in a terminal signals the whole foreground process group.
        os.killpg(run.proc.pid, sig)
        code = run.proc.wait(30 * SLOW)
        assert code == 0, "run.sh exited %r after %s:\n%s" % (code, sig.name, run.output())
        for port in ports[:3]:
            assert port_is_free(port), "port %d still answers after run.sh exited" % port
        for marker in SANITIZER_MARKERS:
            assert marker not in run.output(), run.output()
    finally:
        run.close()


@pytest.mark.parametrize("which", [0, 1, 2], ids=["H2GW_PORT", "H2GW_TLS_PORT", "ORIGIN_PORT"])
def test_make_run_port_in_use(tmp_path, which):
    ports = free_ports(4)
    var = ["H2GW_PORT", "H2GW_TLS_PORT", "ORIGIN_PORT"][which]
    holder = socket.socket()
    holder.bind(("127.0.0.1", ports[which]))
    holder.listen(8)
    run = RunScript(tmp_path, ports)
    try:
        code = run.proc.wait(30 * SLOW)
        out = run.output()
        assert code != 0, out
        assert "Ctrl-C stops both" not in out, out
        assert "%d" % ports[which] in out and var in out, out
        for port in ports:
            if port != ports[which]:
                assert port_is_free(port), "port %d answers after run.sh failed" % port
    finally:
        run.close()
        holder.close()
