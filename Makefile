# The commands a newcomer types.  Every target installs what it needs first.
PY := .venv/bin/python
PYTEST := $(PY) -m pytest

.PHONY: setup run test test-fast bench lint clean

setup:
	@bash ci/bootstrap.sh

## run: every reproducer on every kernel of kernels.yaml; evidence in results/latest
##      JOBS=N (or auto): kernels side by side; HOSTS=hosts.yaml: on other machines
run: setup
	$(PY) -m harness run $(if $(JOBS),-n $(JOBS)) $(if $(HOSTS),--hosts $(HOSTS))

## test: the project's own tests (unit; plumbing: pytest, xdist, progress and reports on
##       replayed real consoles; integration: tests that boot real kernels).  The first two
##       run on two workers; the integration tests one at a time, because two TCG guests
##       on two cores slowed each other threefold (measured) and their waits are real time
test: setup
	$(PYTEST) tests/unit tests/plumbing -n 2 -q -rs
	$(PYTEST) tests/integration -v -rs --durations=40

## test-fast: unit tests only, about a minute
test-fast: setup
	$(PYTEST) tests/unit -q

## bench: boot floor vs harness boot-to-ready, first result, warm per-test overhead;
##        each backend against its floor (qemu: poweroff init; virtme: vng --exec true);
##        kernel builds: first, incremental after a one-file patch, per-patch series
##        the default matrix serial vs -n 2 vs -n auto (wall and CPU ratios);
##        the default matrix with and without its arm64 kernel;
##        snapshots: the crash run with and without, a second run with kept snapshots
##        peers: the guest tests through vng and through the harness, cold and kept
bench: setup
	$(PY) bench/bench_boot.py
	$(PY) bench/bench_boot.py --kernel debian-6.12-arm64 --runs 3 --warm 10
	$(PY) bench/bench_backends.py
	$(PY) bench/bench_build.py
	$(PY) bench/bench_parallel.py
	$(PY) bench/bench_matrix.py
	$(PY) bench/bench_snapshots.py
	$(PY) bench/bench_peers.py

lint: setup
	.venv/bin/ruff check harness tests bench conftest.py
	.venv/bin/ruff format --check harness tests bench conftest.py

clean:
	rm -rf results .ruff_cache
