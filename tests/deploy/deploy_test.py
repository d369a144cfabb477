#!/usr/bin/python3
"""Checks the deploy files of deploy/ against what they promise and against the real binaries.

    tests/deploy/deploy_test.py KIND SOURCE_DIR SERVER_BIN CLI_BIN     KIND: systemd, container,
                                                                        kubernetes

Each kind is checked in two ways: its invariants (read from the file: a hardened unit, a
non-root container with its data dir as a volume, a Pod that shares agate's socket with the
agent), and its command lines run for real: agate-server is started with exactly the flags the
file gives it (paths, ports and the socket group moved into a temporary directory), must become
SERVING, must answer the file's own health probe command, and must exit 0 on SIGTERM. So a flag
the binary does not accept, or a probe that asks the wrong socket, fails here.

What needs a tool that may be absent says so and skips only that part: `systemd-analyze`
(Debian's systemd package, installed by tools/install-deps.sh) and a container engine (podman,
or docker with a daemon) for building the image.
"""
import grp
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SOURCE = SERVER = CLI = ""
MATRIX = "deploy/examples/escalation-matrix.yaml"
# The container's image names that are Debian 12.
DEBIAN_12 = re.compile(r"^debian:(12|bookworm)(-slim)?(@sha256:[0-9a-f]{64})?$")


def read(relative):
    with open(os.path.join(SOURCE, relative), encoding="utf-8") as f:
        return f.read()


def flag_values(args, flag):
    """Every value of --flag in args (as `--flag V` or `--flag=V`)."""
    values = []
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            values.append(args[i + 1])
        elif a.startswith(flag + "="):
            values.append(a[len(flag) + 1:])
    return values


class Sandbox:
    """Moves the absolute paths, ports and group of a deploy file's command lines into a
    temporary directory, so that they run here as they would there."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="agate-deploy-")
        self.paths = []
        self.group = grp.getgrgid(os.getgid()).gr_name

    def place(self, mapping):
        """Sets where each deployed path is here (deployed -> local); the more specific (longer)
        paths are tried first."""
        self.paths = sorted(mapping.items(), key=lambda kv: -len(kv[0]))

    def here(self, deployed):
        """The directory that stands for a deployed directory (created on first use)."""
        path = os.path.join(self.dir, deployed.strip("/").replace("/", "_"))
        os.makedirs(path, exist_ok=True)
        return path

    def map_arg(self, arg):
        for deployed, local in self.paths:
            if deployed in arg:
                return arg.replace(deployed, local)
        # A TCP listener: a free port instead of the fixed one.
        return re.sub(r"^(127\.0\.0\.1|\[::1\]|localhost):\d+$", r"\1:0", arg)

    def map_args(self, args, groups=()):
        mapped = [self.map_arg(a) for a in args]
        # --socket-group names a group of the target host; here, the current user's.
        for i, a in enumerate(mapped[:-1]):
            if a == "--socket-group" and mapped[i + 1] in groups:
                mapped[i + 1] = self.group
        return mapped

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class RunningServer:
    """agate-server started with a deploy file's arguments; stop() asserts a clean exit."""

    def __init__(self, test, args, socket):
        self.test, self.socket = test, socket
        self.log_path = os.path.join(os.path.dirname(socket), "server.log")
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                test.fail("agate-server %s exited %d at start:\n%s" %
                          (" ".join(args), self.process.returncode, self.output()))
            r = subprocess.run([CLI, "health", "--server", "unix:" + socket, "--timeout", "2s"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                return
            time.sleep(0.2)
        self.stop()
        test.fail("agate-server %s: not SERVING within 60 s:\n%s" % (" ".join(args), self.output()))

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def run_probe(self, command):
        r = subprocess.run(command, capture_output=True, text=True, timeout=30)
        self.test.assertEqual(r.returncode, 0, "probe %s failed:\n%s%s" %
                              (command, r.stdout, r.stderr))
        self.test.assertIn("SERVING", r.stdout)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self.test.fail("agate-server did not exit within 30 s of SIGTERM")
        self.log.close()
        self.test.assertEqual(self.process.returncode, 0,
                              "agate-server exited %d after SIGTERM:\n%s" %
                              (self.process.returncode, self.output()))


def deployed_binaries():
    return {"/usr/local/bin/agate-server": SERVER, "/usr/local/bin/agate": CLI}


def only_unix_socket(test, args):
    sockets = [a[len("unix:"):] for a in flag_values(args, "--listen") if a.startswith("unix:")]
    test.assertEqual(len(sockets), 1, "one unix: --listen expected in %s" % args)
    return sockets[0]


# --- systemd -------------------------------------------------------------------------------------


def parse_unit(text):
    """A unit file as {section: [(key, value), ...]}, continuation lines joined."""
    sections, section, pending = {}, None, ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            sections.setdefault(section, [])
            continue
        key, _, value = line.partition("=")
        sections[section].append((key.strip(), value.strip()))
    return sections


def unit_value(unit, section, key):
    values = [v for k, v in unit.get(section, []) if k == key]
    return values[-1] if values else None


def verify_units(directory, names):
    """systemd-analyze verify on the units: (exit code, what it printed). A warning (an unknown
    key, a value it cannot parse) is printed but does not change its exit code."""
    r = subprocess.run(["systemd-analyze", "verify"] + [os.path.join(directory, n) for n in names],
                       capture_output=True, text=True, cwd=directory)
    return r.returncode, (r.stdout + r.stderr).strip()


class SystemdUnitTest(unittest.TestCase):
    UNITS = ["agate.service", "agate-health.service", "agate-health.timer"]

    def setUp(self):
        self.text = read("deploy/systemd/agate.service")
        self.unit = parse_unit(self.text)
        self.service = lambda key: unit_value(self.unit, "Service", key)
        self.args = shlex.split(self.service("ExecStart"))

    def test_is_hardened(self):
        want = {
            "DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
            "PrivateTmp": "yes", "PrivateDevices": "yes", "NoNewPrivileges": "yes",
            "CapabilityBoundingSet": "", "AmbientCapabilities": "",
            "SystemCallFilter": "@system-service", "SystemCallArchitectures": "native",
            "RestrictNamespaces": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
            "MemoryDenyWriteExecute": "yes", "ProtectKernelTunables": "yes",
            "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
        }
        for key, value in want.items():
            self.assertEqual(self.service(key), value, "agate.service: %s" % key)
        families = set(self.service("RestrictAddressFamilies").split())
        self.assertEqual(families, {"AF_UNIX", "AF_INET", "AF_INET6"})
        self.assertGreaterEqual(int(self.service("LimitNOFILE")), 65536)
        self.assertIsNone(self.service("ReadWritePaths"),
                          "StateDirectory= gives the data dir; nothing else is writable")

    def test_data_dir_socket_and_group_are_the_units_own(self):
        self.assertEqual(self.args[0], "/usr/local/bin/agate-server")
        self.assertEqual(flag_values(self.args, "--data-dir"),
                         ["/var/lib/" + self.service("StateDirectory")])
        socket = only_unix_socket(self, self.args)
        self.assertEqual(os.path.dirname(socket), "/run/" + self.service("RuntimeDirectory"))
        groups = self.service("SupplementaryGroups").split()
        self.assertEqual(len(flag_values(self.args, "--socket-group")), 1)
        self.assertIn(flag_values(self.args, "--socket-group")[0], groups,
                      "the socket's group must be one the dynamic user is in")
        # The liveness probe asks that socket.
        health = read("deploy/systemd/agate-health.service")
        self.assertIn("agate health --server unix:%s " % socket, health)

    def test_systemd_analyze_verify_passes_and_catches_a_bad_unit(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is absent (Debian package systemd; "
                          "tools/install-deps.sh installs it)")
        tmp = tempfile.mkdtemp(prefix="agate-units-")
        try:
            for name in self.UNITS:
                text = read("deploy/systemd/" + name)
                # verify needs ExecStart's binary to exist: the one just built.
                text = text.replace("/usr/local/bin/agate-server", SERVER)
                with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                    f.write(text)
            code, printed = verify_units(tmp, self.UNITS)
            self.assertEqual((code, printed), (0, ""), "systemd-analyze verify")
            # The same check on a unit with a typo and a bad value fails: warnings count.
            bad = read("deploy/systemd/agate.service").replace("/usr/local/bin/agate-server", SERVER)
            bad = bad.replace("ProtectSystem=strict", "ProtectSystem=stirct\nProtectHomes=yes")
            with open(os.path.join(tmp, "agate.service"), "w", encoding="utf-8") as f:
                f.write(bad)
            code, printed = verify_units(tmp, ["agate.service"])
            self.assertIn("ProtectHomes", printed)
            self.assertIn("stirct", printed)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_exposure_is_low(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is absent (Debian package systemd)")
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                            os.path.join(SOURCE, "deploy/systemd/agate.service")],
                           capture_output=True, text=True)
        m = re.search(r"Overall exposure level for agate\.service: (\d+\.\d+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        print("systemd-analyze security: exposure %s (0 best, 10 worst)" % m.group(1))
        self.assertLessEqual(float(m.group(1)), 2.0)

    def test_exec_start_runs_and_the_health_probe_answers(self):
        socket_dir = "/run/" + self.service("RuntimeDirectory")
        box = Sandbox()
        box.place(dict(deployed_binaries(), **{
            "/etc/agate/escalation-matrix.yaml": os.path.join(SOURCE, MATRIX),
            "/var/lib/agate": box.here("/var/lib/agate"),
            socket_dir: box.here(socket_dir)}))
        try:
            args = box.map_args(self.args, groups=self.service("SupplementaryGroups").split())
            socket = only_unix_socket(self, args)
            server = RunningServer(self, args, socket)
            try:
                health = read("deploy/systemd/agate-health.service")
                probe = re.search(r"(/usr/local/bin/agate health [^&;]*?)\s*&&", health).group(1)
                server.run_probe(box.map_args(shlex.split(probe)))
                self.assertEqual(oct(os.stat(socket).st_mode & 0o777), "0o660")
                self.assertEqual(os.stat(socket).st_gid, os.getgid())
            finally:
                server.stop()
            # The data dir is where the unit says: the store and the decision log are there.
            self.assertTrue(os.path.exists(os.path.join(box.here("/var/lib/agate"), "agate.db")))
        finally:
            box.cleanup()


# --- container -----------------------------------------------------------------------------------


def parse_containerfile(text):
    """[(INSTRUCTION, arguments, line number)], continuation lines joined, comments dropped."""
    instructions, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = number
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = pending + stripped
        pending = ""
        word, _, rest = line.partition(" ")
        instructions.append((word.upper(), rest.strip(), start))
    return instructions


def stages(instructions):
    """The instructions split by FROM: [(image, name, [instructions...])]."""
    result = []
    for word, rest, number in instructions:
        if word == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            result.append((parts[0], name, []))
        else:
            result[-1][2].append((word, rest, number))
    return result


def exec_form(rest):
    """A JSON-array (exec form) argument list; the test requires the exec form."""
    return json.loads(rest)


def apt_packages(run):
    """The packages of an `apt-get install` in a RUN line."""
    m = re.search(r"apt-get install ([^&]*)", run)
    return [w for w in m.group(1).split() if not w.startswith("-")] if m else []


def install_deps_packages():
    text = read("tools/install-deps.sh")
    m = re.search(r"packages=\((.*?)\)", text, re.S)
    return set(m.group(1).split())


def container_engine():
    """podman, or docker with a daemon that answers; None otherwise."""
    if shutil.which("podman"):
        return "podman"
    if shutil.which("docker"):
        r = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            return "docker"
    return None


def packages_of(libraries):
    """{library path: the Debian package that installed it}, in one dpkg -S call (a path may be
    registered under /lib or /usr/lib: Debian 12 merged them)."""
    aliases = {}
    for lib in libraries:
        for path in (lib, os.path.realpath(lib), re.sub(r"^/usr/lib/", "/lib/", lib),
                     re.sub(r"^/lib/", "/usr/lib/", lib)):
            aliases.setdefault(path, lib)
    r = subprocess.run(["dpkg", "-S"] + sorted(aliases), capture_output=True, text=True)
    owners = {}
    for line in r.stdout.splitlines():
        package, _, path = line.partition(": ")
        if path in aliases:
            owners[aliases[path]] = package.split(":")[0]
    return owners


class ContainerfileTest(unittest.TestCase):
    def setUp(self):
        self.stages = stages(parse_containerfile(read("deploy/container/Containerfile")))
        self.image, _, self.final = self.stages[-1]
        self.of = lambda word: [(rest, n) for w, rest, n in self.final if w == word]
        self.args = exec_form(self.of("ENTRYPOINT")[-1][0]) + exec_form(self.of("CMD")[-1][0])

    def test_every_stage_is_debian_12(self):
        for image, _, _ in self.stages:
            self.assertRegex(image, DEBIAN_12)

    def test_runs_as_a_user_that_is_not_root(self):
        users = self.of("USER")
        self.assertTrue(users, "the final stage sets no USER")
        user = users[-1][0].split(":")[0]
        self.assertNotIn(user, ("root", "0"))
        self.assertTrue(user.isdigit(), "a numeric USER lets Kubernetes check runAsNonRoot")
        # Nothing after USER runs as root again.
        last_user = users[-1][1]
        self.assertFalse([n for w, _, n in self.final if w == "RUN" and n > last_user])

    def test_the_data_dir_is_a_volume(self):
        data_dirs = flag_values(self.args, "--data-dir")
        self.assertEqual(len(data_dirs), 1)
        volumes = [v for rest, _ in self.of("VOLUME") for v in exec_form(rest)]
        self.assertIn(data_dirs[0], volumes)

    def test_the_health_check_asks_the_servers_socket(self):
        checks = self.of("HEALTHCHECK")
        self.assertEqual(len(checks), 1)
        self.assertNotEqual(checks[0][0].strip().upper(), "NONE")
        command = self.health_command()
        self.assertEqual(command[:2], ["/usr/local/bin/agate", "health"])
        self.assertEqual(flag_values(command, "--server"),
                         ["unix:" + only_unix_socket(self, self.args)])

    def health_command(self):
        m = re.search(r"\bCMD\s+(\[.*\])\s*$", self.of("HEALTHCHECK")[0][0])
        self.assertIsNotNone(m, "HEALTHCHECK CMD in exec form (a JSON array)")
        return exec_form(m.group(1))

    def test_every_copy_source_is_in_the_repository(self):
        copies = 0
        for _, _, instructions in self.stages:
            for word, rest, number in instructions:
                if word != "COPY" or rest.startswith("--from"):
                    continue
                for source in rest.split()[:-1]:
                    copies += 1
                    self.assertTrue(os.path.exists(os.path.join(SOURCE, source)),
                                    "Containerfile:%d: COPY %s: not in the repository" %
                                    (number, source))
        self.assertGreater(copies, 0)

    def test_the_build_stage_installs_packages_install_deps_knows(self):
        known = install_deps_packages()
        build = [p for w, rest, _ in self.stages[0][2] if w == "RUN" for p in apt_packages(rest)]
        self.assertTrue(build)
        self.assertEqual([p for p in build if p not in known], [],
                         "build-stage packages missing from tools/install-deps.sh")

    def test_the_runtime_packages_provide_every_library_the_binaries_load(self):
        runtime = [p for rest, _ in self.of("RUN") for p in apt_packages(rest)]
        # The base image has apt, and with it libc6, libstdc++6 and libgcc-s1.
        r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends",
                            "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                            "--no-enhances", "apt"] + runtime, capture_output=True, text=True)
        hint = "apt-cache depends %s: %s (after apt-get update?)" % (" ".join(runtime), r.stderr)
        self.assertEqual(r.returncode, 0, hint)
        present = {line.strip() for line in r.stdout.splitlines() if not line.startswith(" ")}
        self.assertEqual(set(runtime) - present, set(), hint)
        module = os.path.join(os.path.dirname(SERVER), "agate_http.so")
        needed = {}  # library path -> the binaries that load it
        for binary in (SERVER, module, CLI):
            ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
            for lib in re.findall(r"=> (/\S+)", ldd.stdout):
                # A sanitizer build (the asan preset) loads its runtime; the image ships Release.
                if re.match(r"lib[almt]san\.|libubsan\.", os.path.basename(lib)):
                    continue
                needed.setdefault(lib, []).append(os.path.basename(binary))
        owners = packages_of(needed)
        missing = ["%s: %s (%s)" % (",".join(b), lib, owners.get(lib, "no package"))
                   for lib, b in sorted(needed.items()) if owners.get(lib) not in present]
        self.assertEqual(missing, [], "libraries no runtime package provides")

    def test_entrypoint_and_cmd_run_and_the_health_check_answers(self):
        box = Sandbox()
        copies = {rest.split()[-1]: rest.split()[0] for rest, _ in self.of("COPY")
                  if not rest.startswith("--from")}
        mapped = dict(deployed_binaries())
        for deployed, source in copies.items():
            mapped[deployed] = os.path.join(SOURCE, source)
        socket_dir = os.path.dirname(only_unix_socket(self, self.args))
        for deployed in flag_values(self.args, "--data-dir") + [socket_dir]:
            mapped[deployed] = box.here(deployed)
        box.place(mapped)
        try:
            args = box.map_args(self.args)
            server = RunningServer(self, args, only_unix_socket(self, args))
            try:
                server.run_probe(box.map_args(self.health_command()))
            finally:
                server.stop()
        finally:
            box.cleanup()

    def test_image_builds_where_a_container_engine_runs(self):
        engine = container_engine()
        if engine is None:
            self.skipTest("no container engine here (podman, or docker with a daemon): the "
                          "image was not built; the file's invariants are checked above")
        r = subprocess.run([engine, "build", "-f", "deploy/container/Containerfile", "-t",
                            "agate-deploy-test", "."], cwd=SOURCE, capture_output=True, text=True,
                           timeout=3600)
        self.assertEqual(r.returncode, 0, r.stdout[-4000:] + r.stderr[-4000:])


# --- kubernetes ----------------------------------------------------------------------------------


class KubernetesSidecarTest(unittest.TestCase):
    def setUp(self):
        import yaml  # Debian's python3-yaml
        documents = [d for d in yaml.safe_load_all(read("deploy/kubernetes/sidecar.yaml")) if d]
        self.assertEqual([d["kind"] for d in documents], ["Deployment"])
        self.pod = documents[0]["spec"]["template"]["spec"]
        containers = self.pod.get("initContainers", []) + self.pod["containers"]
        self.agate = [c for c in containers if c["name"] == "agate"][0]
        self.agent = [c for c in containers if c["name"] != "agate"][0]
        self.volumes = {v["name"]: v for v in self.pod["volumes"]}
        self.socket = only_unix_socket(self, self.agate["args"])

    def mount_of(self, container, path):
        """The volume mount of container under which path lies (the deepest)."""
        mounts = [m for m in container.get("volumeMounts", [])
                  if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")]
        self.assertTrue(mounts, "%s: no volume holds %s" % (container["name"], path))
        return max(mounts, key=lambda m: len(m["mountPath"]))

    def test_agate_is_a_sidecar_that_starts_first(self):
        self.assertIn(self.agate, self.pod.get("initContainers", []))
        self.assertEqual(self.agate.get("restartPolicy"), "Always")
        self.assertIn(self.agent, self.pod["containers"])

    def test_the_socket_is_shared_through_an_empty_dir(self):
        mount = self.mount_of(self.agate, self.socket)
        self.assertIn("emptyDir", self.volumes[mount["name"]])
        target = [e["value"] for e in self.agent["env"] if e["name"] == "AGATE_TARGET"]
        self.assertEqual(len(target), 1)
        self.assertTrue(target[0].startswith("unix:"))
        agent_mount = self.mount_of(self.agent, target[0][len("unix:"):])
        self.assertEqual(agent_mount["name"], mount["name"], "the agent's socket is agate's")
        self.assertEqual(os.path.relpath(target[0][len("unix:"):], agent_mount["mountPath"]),
                         os.path.relpath(self.socket, mount["mountPath"]))

    def test_nothing_runs_as_root(self):
        self.assertTrue(self.pod["securityContext"]["runAsNonRoot"])
        for c in (self.agate, self.agent):
            sc = c["securityContext"]
            self.assertNotEqual(sc.get("runAsUser", 1), 0, c["name"])
            self.assertFalse(sc["allowPrivilegeEscalation"], c["name"])
            self.assertEqual(sc["capabilities"]["drop"], ["ALL"], c["name"])
        # The socket (0660, agate's group) is reachable by the agent through fsGroup.
        self.assertEqual(self.pod["securityContext"]["fsGroup"],
                         self.agate["securityContext"]["runAsGroup"])

    def test_agate_writes_only_to_its_volumes(self):
        self.assertTrue(self.agate["securityContext"]["readOnlyRootFilesystem"])
        for path in flag_values(self.agate["args"], "--data-dir") + [self.socket, "/tmp/x"]:
            self.mount_of(self.agate, path)
        matrix = flag_values(self.agate["args"], "--matrix")[0]
        self.assertIn("configMap", self.volumes[self.mount_of(self.agate, matrix)["name"]])

    def test_probes_ask_agates_health_over_the_socket(self):
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            command = self.agate[probe]["exec"]["command"]
            self.assertEqual(command[:2], ["/usr/local/bin/agate", "health"], probe)
            self.assertEqual(flag_values(command, "--server"), ["unix:" + self.socket], probe)

    def test_resources_are_requested_and_limited(self):
        for c in (self.agate, self.agent):
            r = c["resources"]
            self.assertIn("cpu", r["requests"], c["name"])
            request, limit = (self.mebibytes(r[k]["memory"]) for k in ("requests", "limits"))
            self.assertLessEqual(request, limit, c["name"])
        # agate's limit leaves room for its open-case budget (the process holds about twice
        # --max-open-case-bytes: docs/operations.md) above the measured RSS it requests.
        budget = int(flag_values(self.agate["args"], "--max-open-case-bytes")[0]) / 2**20
        limits = self.agate["resources"]["limits"]["memory"]
        self.assertGreaterEqual(self.mebibytes(limits),
                                self.mebibytes(self.agate["resources"]["requests"]["memory"]) +
                                2 * budget)

    @staticmethod
    def mebibytes(quantity):
        units = {"Mi": 1, "Gi": 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
        m = re.fullmatch(r"(\d+)([A-Za-z]*)", str(quantity))
        return int(m.group(1)) * units[m.group(2)]

    def test_args_run_and_the_probes_answer(self):
        box = Sandbox()
        mapped = dict(deployed_binaries())
        mapped[flag_values(self.agate["args"], "--matrix")[0]] = os.path.join(SOURCE, MATRIX)
        for path in flag_values(self.agate["args"], "--data-dir") + [self.socket]:
            mount = self.mount_of(self.agate, path)["mountPath"]
            mapped[mount] = box.here(mount)
        box.place(mapped)
        try:
            args = box.map_args([SERVER] + self.agate["args"])
            server = RunningServer(self, args, only_unix_socket(self, args))
            try:
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    server.run_probe(box.map_args(self.agate[probe]["exec"]["command"]))
            finally:
                server.stop()
        finally:
            box.cleanup()


KINDS = {"systemd": SystemdUnitTest, "container": ContainerfileTest,
         "kubernetes": KubernetesSidecarTest}

if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in KINDS:
        sys.exit(__doc__)
    kind = sys.argv[1]
    SOURCE, SERVER, CLI = (os.path.abspath(p) for p in sys.argv[2:5])
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(KINDS[kind])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
