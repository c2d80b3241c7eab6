# SPDX-License-Identifier: MIT
"""The Python binding against a real libtel, each test in a private HOME.

    python3 -m unittest discover -s bindings/python/tests
    python3 bindings/python/tests/test_tel.py     # ok/FAIL lines, as make check reads them

libtel is found as the package finds it (TEL_LIBRARY, else the tree's
build/); `tel show` reads back what was queued (TEL_BIN, else PATH, else
the tree's build/bin/tel).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import tel  # noqa: E402

TOP = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
TEL_BIN = os.environ.get("TEL_BIN") or shutil.which("tel") or os.path.join(TOP, "build", "bin", "tel")
APP = "pyapp"


def rss_anon_kib() -> int:
    """Resident anonymous memory: the heaps, not the queue's file-backed map."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon in /proc/self/status")


class Base(unittest.TestCase):
    def setUp(self) -> None:
        self.home = tempfile.mkdtemp(prefix="tel-py.")
        self.saved = dict(os.environ)
        for k in list(os.environ):
            if k == "DO_NOT_TRACK" or k == "CI" or "_TELEMETRY_" in k:
                del os.environ[k]
        os.environ["HOME"] = self.home
        os.environ.pop("XDG_STATE_HOME", None)
        os.environ.pop("XDG_CONFIG_HOME", None)

    def tearDown(self) -> None:
        os.environ.clear()
        os.environ.update(self.saved)
        shutil.rmtree(self.home, ignore_errors=True)

    def queued(self, app: str = APP) -> list:
        out = subprocess.run([TEL_BIN, "show", "--app", app], capture_output=True, text=True).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def state(self, app: str = APP) -> str:
        return os.path.join(self.home, ".local", "state", app)


class OneCall(Base):
    def test_typed(self) -> None:
        """tel.emit records int, float, bool, None and UTF-8 str properties with their types"""
        self.assertTrue(tel.emit(APP, "deploy", {"services": 3, "ratio": 2.5, "dry": False, "none": None,
                                                 "who": "équipe", "big": -(1 << 63)}))
        (ev,) = self.queued()
        self.assertEqual(ev["name"], "deploy")
        self.assertEqual(ev["props"], {"services": 3, "ratio": 2.5, "dry": False, "none": None,
                                       "who": "équipe", "big": -(1 << 63)})
        self.assertIs(type(ev["props"]["services"]), int)
        self.assertIs(type(ev["props"]["ratio"]), float)

    def test_packed_layout(self) -> None:
        """the packed property array is byte for byte what ctypes lays out for struct tel_prop"""
        import ctypes
        from tel import _lib
        props = {"n": None, "b": True, "i": -7, "f": 0.25, "s": "x", "a": [1], "m": {"k": 2}}
        packed = tel._Props(props)
        self.assertEqual(len(packed.array), packed.count * ctypes.sizeof(_lib.Prop))
        arr = (_lib.Prop * packed.count).from_buffer_copy(packed.array)
        got = [(p.key, p.type) for p in arr]
        self.assertEqual(got, [(b"n", 0), (b"b", 1), (b"i", 2), (b"f", 3), (b"s", 4), (b"a", 5), (None, 2),
                               (b"m", 6), (b"k", 2)])
        self.assertEqual((arr[1].v.b, arr[2].v.i, arr[3].v.f, arr[4].v.s, arr[5].v.i, arr[6].v.i),
                         (1, -7, 0.25, b"x", 1, 1))

    def test_structured(self) -> None:
        """lists, tuples and dicts are recorded as structured values, in their shape"""
        config = {"adapter": "@astrojs/vercel", "integrations": ["@astrojs/mdx", "@astrojs/rss"],
                  "markdown": {"syntaxHighlight": "shiki"}}
        options = [{"name": "env", "asCli": True, "asEnv": False, "count": 2}]
        self.assertTrue(tel.emit(APP, "build", {"config": config, "commandOptions": options, "pair": (1, 2.5),
                                                "empty": []}))
        self.assertEqual(self.queued()[0]["props"], {"config": config, "commandOptions": options,
                                                     "pair": [1, 2.5], "empty": []})
        with self.assertRaises(tel.TelError) as cm:
            tel.emit(APP, "deep", {"d": [[[[[1]]]]]})
        self.assertEqual(cm.exception.code, tel.ERR_LIMIT)
        selfish: list = []
        selfish.append(selfish)
        with self.assertRaises(tel.TelError) as cm:
            tel.emit(APP, "self", {"d": selfish})
        self.assertEqual(cm.exception.code, tel.ERR_LIMIT)
        with self.assertRaises(tel.TelError):
            tel.emit(APP, "key", {"d": {1: 2}})
        self.assertEqual(len(self.queued()), 1)

    def test_do_not_track(self) -> None:
        """DO_NOT_TRACK=1 makes tel.emit record nothing and create no cookie"""
        os.environ["DO_NOT_TRACK"] = "1"
        self.assertFalse(tel.emit(APP, "deploy", {"n": 1}))
        self.assertFalse(os.path.exists(os.path.join(self.state(), "telemetry-cookie")))
        self.assertEqual(self.queued(), [])

    def test_app_env_optout(self) -> None:
        """<APP>_TELEMETRY_ENABLED=false purges what was queued and records nothing"""
        tel.emit(APP, "before")
        os.environ["PYAPP_TELEMETRY_ENABLED"] = "false"
        self.assertFalse(tel.emit(APP, "after"))
        del os.environ["PYAPP_TELEMETRY_ENABLED"]
        self.assertEqual(self.queued(), [])

    def test_caller_errors_raise(self) -> None:
        """a bad event name, an unsupported type or an oversized event raises TelError with code and detail"""
        with self.assertRaises(tel.TelError) as cm:
            tel.emit(APP, "bad name")
        self.assertEqual(cm.exception.code, tel.ERR_INVALID)
        self.assertIn("space", cm.exception.detail)
        with self.assertRaises(tel.TelError) as cm:
            tel.emit(APP, "e", {"s": {1, 2}})
        self.assertEqual(cm.exception.code, tel.ERR_INVALID)
        self.assertIn("'s'", cm.exception.detail)
        with self.assertRaises(tel.TelError):
            tel.emit(APP, "e", {"n": 1 << 64})
        with self.assertRaises(tel.TelError):
            tel.emit(APP, "e", {"s": "a\0b"})
        with self.assertRaises(tel.TelError) as cm:
            tel.emit(APP, "e", {"k%d" % i: i for i in range(33)})
        self.assertEqual(cm.exception.code, tel.ERR_LIMIT)
        with self.assertRaises(tel.TelError):
            tel.emit("Bad/App", "e")
        self.assertEqual(self.queued(), [])

    def test_environment_failure_is_quiet(self) -> None:
        """an unusable HOME makes emit return False, and raise an environmental TelError only when strict"""
        f = os.path.join(self.home, "file")
        open(f, "w").close()
        os.environ["HOME"] = f
        self.assertFalse(tel.emit(APP, "deploy"))
        with self.assertRaises(tel.TelError) as cm:
            tel.emit(APP, "deploy", strict=True)
        self.assertEqual(cm.exception.code, tel.ERR_NOSTATE)
        self.assertTrue(cm.exception.environmental)
        t = tel.Telemetry(APP)
        self.assertFalse(t.emit("deploy"))
        t.close()
        with self.assertRaises(tel.TelError):
            tel.Telemetry(APP, strict=True)


class Handle(Base):
    def test_handle_lifecycle(self) -> None:
        """a handle records command.started/exited with option names, a batch and its version"""
        with tel.Telemetry(APP, version="1.4.2") as t:
            self.assertTrue(t.enabled)
            with t.command("deploy", options=["force", "output"], env_options=["token"]):
                with t.batch():
                    for i in range(3):
                        self.assertTrue(t.emit("step", {"i": i}))
                    self.assertEqual(self.queued(), [e for e in self.queued() if e["name"] != "step"])
        evs = self.queued()
        self.assertEqual([e["name"] for e in evs],
                         ["command.started", "step", "step", "step", "command.exited"])
        self.assertEqual(evs[0]["props"], {"command": "deploy", "options": "force,output", "env_options": "token"})
        self.assertEqual(evs[-1]["props"]["exit_code"], 0)
        self.assertIs(evs[-1]["props"]["success"], True)
        self.assertEqual(evs[0]["context"]["app_version"], "1.4.2")
        self.assertEqual(len({e["exec"] for e in evs}), 1)

    def test_command_exception(self) -> None:
        """an exception leaving a command records exit code 1 and is not swallowed"""
        t = tel.Telemetry(APP)
        with self.assertRaises(KeyError):
            with t.command("build"):
                raise KeyError("x")
        with self.assertRaises(SystemExit):
            with t.command("quit"):
                sys.exit(3)
        t.close()
        ex = [e["props"] for e in self.queued() if e["name"] == "command.exited"]
        self.assertEqual([(p["command"], p["exit_code"], p["success"]) for p in ex],
                         [("build", 1, False), ("quit", 3, False)])
        self.assertNotIn("error", ex[0])  # messages stay home unless debug telemetry is on

    def test_flag_off(self) -> None:
        """a host --no-telemetry flag (enabled=False, source FLAG) records nothing"""
        with tel.Telemetry(APP, enabled=False, source=tel.Source.FLAG) as t:
            self.assertFalse(t.enabled)
            self.assertFalse(t.emit("deploy"))
            self.assertEqual(t.open_status, tel.DISABLED)
        self.assertEqual(self.queued(), [])

    def test_metrics(self) -> None:
        """metric() and prometheus() record metric events; malformed text raises naming the line"""
        with tel.Telemetry(APP) as t:
            self.assertTrue(t.metric("jobs_total", 7.5, {"queue": "default"}))
            self.assertTrue(t.prometheus("# TYPE up gauge\nup 1\n"))
            with self.assertRaises(tel.TelError) as cm:
                t.prometheus("ok 1\nbad{ 2\n")
            self.assertEqual(cm.exception.code, tel.ERR_INVALID)
            self.assertIn("line 2", cm.exception.detail)
            with self.assertRaises(tel.TelError):
                t.metric("x", float("nan"))
        props = [e["props"] for e in self.queued()]
        self.assertEqual(props, [{"name": "jobs_total", "value": 7.5, "label.queue": "default"},
                                 {"name": "up", "value": 1, "kind": "gauge"}])

    def test_notice(self) -> None:
        """the notice is due once, until notice_shown(); with require_notice nothing is recorded before it"""
        with tel.Telemetry(APP, require_notice=True) as t:
            self.assertTrue(t.notice_due())
            self.assertFalse(t.emit("early"))
            self.assertTrue(t.notice_shown())
            self.assertFalse(t.notice_due())
            self.assertTrue(t.emit("later"))
        self.assertEqual([e["name"] for e in self.queued()], ["later"])

    def test_user_controls(self) -> None:
        """status, disable, enable and forget act on the user's state"""
        tel.emit(APP, "one")
        self.assertIn("1 event queued", tel.status(APP))
        cookie = os.path.join(self.state(), "telemetry-cookie")
        first = open(cookie).read()
        tel.forget(APP)
        self.assertFalse(os.path.exists(cookie))
        tel.disable(APP)
        self.assertFalse(tel.emit(APP, "two"))
        self.assertIn("off", tel.status(APP))
        tel.enable(APP)
        self.assertTrue(tel.emit(APP, "three"))
        self.assertNotEqual(open(cookie).read(), first)
        self.assertEqual([e["name"] for e in self.queued()], ["three"])
        with self.assertRaises(tel.TelError):
            tel.status("../x")

    def test_logging_callback(self) -> None:
        """a log callback receives each recorded event as one line"""
        lines = []
        with tel.Telemetry(APP, log=lines.append) as t:
            t.emit("seen", {"k": "v"})
        self.assertEqual(len(lines), 1)
        self.assertIn('"name":"seen"', lines[0])

    def test_spawn_sync(self) -> None:
        """spawn_sync starts a tel-sync when something is queued, not again within the interval"""
        os.environ["PYAPP_TELEMETRY_ENDPOINT"] = "http://127.0.0.1:9/v1/batch"
        with tel.Telemetry(APP) as t:
            self.assertFalse(t.spawn_sync())
            t.emit("one")
            self.assertTrue(t.spawn_sync())
            self.assertFalse(t.spawn_sync())

    def test_declared_env(self) -> None:
        """a declared variable of the host's own is an opt-out, and status names it"""
        decl = [("PYAPP_NO_TELEMETRY", tel.EnvMeaning.OFF_IF_SET)]
        with tel.Telemetry(APP, declare_env=decl) as t:
            self.assertTrue(t.emit("before"))
        os.environ["PYAPP_NO_TELEMETRY"] = ""
        with tel.Telemetry(APP, declare_env=decl) as t:
            self.assertFalse(t.enabled)
            self.assertFalse(t.emit("after"))
        self.assertIn("PYAPP_NO_TELEMETRY", tel.status(APP))
        del os.environ["PYAPP_NO_TELEMETRY"]
        self.assertEqual(self.queued(), [])
        with self.assertRaises(tel.TelError):
            tel.Telemetry(APP, declare_env=[("BAD NAME", tel.EnvMeaning.OFF_IF_SET)])

    def test_default_off(self) -> None:
        """default_enabled=False records nothing until the user opts in"""
        with tel.Telemetry(APP, default_enabled=False) as t:
            self.assertFalse(t.emit("quiet"))
        os.environ["PYAPP_TELEMETRY_ENABLED"] = "true"
        with tel.Telemetry(APP, default_enabled=False) as t:
            self.assertTrue(t.emit("opted.in"))
        self.assertEqual([e["name"] for e in self.queued()], ["opted.in"])

    def test_inspect_and_debug(self) -> None:
        """inspect writes the run's events to the host's file and debug logs them; neither queues"""
        path = os.path.join(self.home, "inspect.txt")
        with tel.Telemetry(APP, inspect=path) as t:
            self.assertTrue(t.emit("looked.at", {"n": 1}))
        with open(path) as f:
            self.assertEqual([json.loads(line)["name"] for line in f], ["looked.at"])
        lines: list = []
        with tel.Telemetry(APP, debug=True, log=lines.append) as t:
            t.emit("debugged")
        self.assertEqual(len(lines), 1)
        self.assertIn("debugged", lines[0])
        self.assertEqual(self.queued(), [])

    def test_error_detail(self) -> None:
        """ErrorDetail.SANITIZED records the error message with its path removed; sanitize() is the same cleaner"""
        with tel.Telemetry(APP, error_detail=tel.ErrorDetail.SANITIZED) as t:
            with self.assertRaises(OSError):
                with t.command("read"):
                    raise OSError("cannot open /home/alice/secret.txt")
        ev = [e for e in self.queued() if e["name"] == "command.exited"][0]["props"]
        self.assertEqual(ev["error_class"], "OSError")
        self.assertIn("error", ev)
        self.assertNotIn("alice", ev["error"])
        self.assertNotIn("alice", tel.sanitize("cannot open /home/alice/secret.txt"))

    def test_erasure(self) -> None:
        """erasure=True makes forget leave a request to erase the old id; erasure=False takes the offer back"""
        with tel.Telemetry(APP, erasure=True) as t:
            self.assertTrue(t.emit("one"))
        old = open(os.path.join(self.state(), "telemetry-cookie")).read().strip()
        tel.forget(APP)
        pending = os.path.join(self.state(), "telemetry-erasure")
        self.assertEqual(os.listdir(pending), [old])
        with open(os.path.join(pending, old)) as f:
            self.assertIn("erase 1 %s" % old, f.read().splitlines())
        with tel.Telemetry(APP, erasure=False) as t:
            self.assertTrue(t.emit("two"))
        tel.forget(APP)
        self.assertEqual(os.listdir(pending), [old])

    def test_exec_id(self) -> None:
        """exec_id() hands the run to a child: the option, or the environment, puts every event in one run"""
        with tel.Telemetry(APP) as t:
            run = t.exec_id()
            t.emit("parent")
        self.assertEqual(len(run), 36)
        with tel.Telemetry(APP, exec_id=run) as t:
            t.emit("child.option")
        os.environ["PYAPP_TELEMETRY_EXEC_ID"] = run
        tel.emit(APP, "child.env")
        del os.environ["PYAPP_TELEMETRY_EXEC_ID"]
        execs = [e["exec"] for e in self.queued()]
        # One run, recorded under an id derived from the token and the
        # anonymous id, never the token itself.
        self.assertEqual(len(execs), 3)
        self.assertEqual(len(set(execs)), 1)
        self.assertNotIn(run, execs)
        with tel.Telemetry(APP, enabled=False) as t:
            self.assertEqual(t.exec_id(), "")
        with self.assertRaises(tel.TelError) as cm:
            tel.Telemetry(APP, exec_id="not-a-uuid")
        self.assertEqual(cm.exception.code, tel.ERR_INVALID)

    def test_linkable_project(self) -> None:
        """project_linkable puts sha256 of the normalised origin URL in every event's context"""
        repo = os.path.join(self.home, "repo")
        subprocess.run(["git", "init", "-q", repo], check=True)
        subprocess.run(["git", "-C", repo, "remote", "add", "origin", "https://github.com/o/r.git"], check=True)
        cwd = os.getcwd()
        os.chdir(repo)
        try:
            with tel.Telemetry(APP, project_linkable=True) as t:
                t.emit("in.repo")
            with tel.Telemetry(APP) as t:
                t.emit("unlinked")
        finally:
            os.chdir(cwd)
        linked, plain = self.queued()
        self.assertEqual(linked["context"].get("project"), hashlib.sha256(b"github.com/o/r").hexdigest())
        self.assertNotIn("project", plain["context"])

    def test_spans(self) -> None:
        """spans record their name, parent, duration and status; an exception ends one with status 1"""
        with tel.Telemetry(APP) as t:
            with t.span("sync") as outer:
                with outer.span("fetch"):
                    pass
                with self.assertRaises(ValueError):
                    with outer.span("parse"):
                        raise ValueError("x")
            dangling = t.span("never.ended")
            with self.assertRaises(tel.TelError):
                t.span("bad name")
        self.assertFalse(dangling.end())  # freed with the handle, unrecorded
        spans = {e["props"]["name"]: e["props"] for e in self.queued() if e["name"] == "span"}
        self.assertEqual(sorted(spans), ["fetch", "parse", "sync"])
        self.assertEqual(spans["fetch"]["parent"], "sync")
        self.assertEqual(spans["fetch"]["parent_id"], spans["sync"]["span_id"])
        self.assertEqual(spans["parse"]["status"], 1)
        self.assertNotIn("parent", spans["sync"])
        self.assertIsInstance(spans["sync"]["duration_ms"], int)

    def test_span_limit(self) -> None:
        """the open-span limit gives a span that records nothing, and raises ERR_LIMIT only when strict"""
        with tel.Telemetry(APP) as t:
            held = [t.span("held") for _ in range(1024)]
            extra = t.span("one.more")
            self.assertFalse(extra.end())
            held[0].end()
            t.span("room.again").end()
        with tel.Telemetry(APP, strict=True) as t:
            held = [t.span("held") for _ in range(1024)]
            with self.assertRaises(tel.TelError) as cm:
                t.span("one.more")
            self.assertEqual(cm.exception.code, tel.ERR_LIMIT)
            self.assertIn("open spans", cm.exception.detail)
        names = [e["props"]["name"] for e in self.queued() if e["name"] == "span"]
        self.assertEqual(sorted(names), ["held", "room.again"])

    def test_span_after_switch(self) -> None:
        """a span begun before set_enabled(False) records nothing when it ends after set_enabled(True)"""
        with tel.Telemetry(APP) as t:
            old = t.span("old")
            t.set_enabled(False)
            self.assertTrue(t.set_enabled(True))
            self.assertFalse(old.end())
            t.span("new").end()
        names = [e["props"]["name"] for e in self.queued() if e["name"] == "span"]
        self.assertEqual(names, ["new"])

    def test_daemon(self) -> None:
        """a daemon's state directory and installation id; set_enabled(False) flips the open handle off and purges"""
        state = os.path.join(self.home, "var")
        with tel.Telemetry(APP, state_dir=state, installation_id="cluster-uid-1") as t:
            self.assertTrue(t.emit("one"))
            self.assertTrue(os.path.isdir(state))
            self.assertFalse(t.set_enabled(False))
            self.assertFalse(t.emit("off"))
            self.assertTrue(t.set_enabled(True))
            self.assertTrue(t.emit("two"))
        os.environ["PYAPP_TELEMETRY_STATE_DIR"] = state
        evs = self.queued()
        del os.environ["PYAPP_TELEMETRY_STATE_DIR"]
        self.assertEqual([e["name"] for e in evs], ["two"])
        self.assertFalse(os.path.exists(os.path.join(self.state(), "telemetry-cookie")))
        with tel.Telemetry(APP, state_dir=state, installation_id="cluster-uid-1") as t:
            t.emit("three")
        os.environ["PYAPP_TELEMETRY_STATE_DIR"] = state
        evs = self.queued()
        del os.environ["PYAPP_TELEMETRY_STATE_DIR"]
        self.assertEqual(len({e["anon"] for e in evs}), 1)  # a restarted daemon keeps its identity

    def test_threads(self) -> None:
        """one handle shared by 8 threads records every event once"""
        t = tel.Telemetry(APP)

        def work(n: int) -> None:
            for i in range(40):
                t.emit("th", {"t": n, "i": i})
                if i % 10 == 0:
                    with t.batch():
                        t.emit("th.b", {"t": n, "i": i})
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        t.close()
        evs = self.queued()
        self.assertEqual(len(evs), 8 * 44)
        self.assertEqual(len({(e["name"], e["props"]["t"], e["props"]["i"]) for e in evs}), 8 * 44)

    def test_flat_memory(self) -> None:
        """100,000 emits on one handle (in batches, the queue at its cap) keep the process's resident heap flat"""
        t = tel.Telemetry(APP)
        props = {"command": "deploy", "n": 1, "ratio": 0.5, "ok": True}

        def emit(n: int) -> None:
            for _ in range(n // 1000):
                with t.batch():
                    for _ in range(1000):
                        t.emit("mem", props)
        emit(10000)
        before = rss_anon_kib()
        emit(90000)
        after = rss_anon_kib()
        t.close()
        self.assertEqual(len(self.queued()), 10000)  # the default cap held
        self.assertLess(after - before, 512, "resident heap grew %d KiB from 10,000 to 100,000 events"
                        % (after - before))


@unittest.skipUnless(os.environ.get("TEL_E2E_HOME"), "only when TEL_E2E_HOME is set")
class ForTheCollector(Base):
    def test_e2e(self) -> None:
        """events for the collector, in TEL_E2E_HOME"""
        os.environ["HOME"] = os.environ["TEL_E2E_HOME"]
        self.assertTrue(tel.emit("e2e-python", "e2e.typed", {"count": 3, "ratio": 2.5, "ok": True, "none": None,
                                                         "who": "équipe"}))
        os.environ["DO_NOT_TRACK"] = "1"
        self.assertFalse(tel.emit("e2e-python-dnt", "e2e.optedout"))


class SentenceResult(unittest.TextTestResult):
    """ok/FAIL lines named by each test's docstring, as tests/run.sh counts them."""

    def _name(self, test: unittest.TestCase) -> str:
        return "python: " + (test.shortDescription() or test.id())

    def addSuccess(self, test: unittest.TestCase) -> None:
        print("ok " + self._name(test), flush=True)

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        pass

    def addFailure(self, test: unittest.TestCase, err: tuple) -> None:
        super().addFailure(test, err)
        print("FAIL %s: %s" % (self._name(test), str(err[1]).replace("\n", " ")[:300]), flush=True)

    def addError(self, test: unittest.TestCase, err: tuple) -> None:
        super().addError(test, err)
        print("FAIL %s: %s: %s" % (self._name(test), err[0].__name__, str(err[1])[:300]), flush=True)


if __name__ == "__main__":
    runner = unittest.TextTestRunner(resultclass=SentenceResult, stream=open(os.devnull, "w"))
    unittest.main(testRunner=runner)
