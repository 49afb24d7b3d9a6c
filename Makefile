# neurolearn — developer and user entry points.
# torch is installed first from a pinned spec: an open range lets pip pull a CUDA build of several GB.
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
DEMO_DIR ?= demo
DEMO_PARTICIPANTS ?= 16
DEMO_BOLD_PARTICIPANTS ?= 4
PYTEST_ARGS ?= --durations=25
# the suite on two worker processes, each test file whole on one (its module fixtures run once); CI has 2 cores
TEST_WORKERS ?= 2

.PHONY: install demo test test-heavy bench completions lint clean

install:
	$(PYTHON) -m pip install --quiet "$(TORCH_SPEC)"
	$(PYTHON) -m pip install --quiet -e ".[test]"

demo: install
	@# patients with simulated atrophy and controls alternate, over two sites; only the first participants have a BOLD run
	neurolearn example-data $(DEMO_DIR)/bids --participants $(DEMO_PARTICIPANTS) --bold-participants $(DEMO_BOLD_PARTICIPANTS) --seed 0
	@# a collaborative project pins the participants' workflow (few permutations, to keep the demo short)
	rm -rf $(DEMO_DIR)/project $(DEMO_DIR)/bundles
	neurolearn project init $(DEMO_DIR)/project --name demo
	sed -i 's/permutations: 50/permutations: 20/' $(DEMO_DIR)/project/project.yaml
	@# a participant that fails is reported (exit 1) and listed in the group report; the group level still runs
	-neurolearn $(DEMO_DIR)/bids $(DEMO_DIR)/derivatives participant --project $(DEMO_DIR)/project/project.yaml --nprocs 2 --omp-nthreads 1
	@# patients vs controls from regional grey-matter volumes: the spec the example dataset ships in code/
	neurolearn $(DEMO_DIR)/bids $(DEMO_DIR)/derivatives group --spec $(DEMO_DIR)/bids/code/patients_vs_controls.yaml
	neurolearn verify $(DEMO_DIR)/derivatives
	@# the project as a consortium runs it: each scanner site exports a bundle, the coordinator pools them
	for site in siteA siteB; do \
	  neurolearn project export $(DEMO_DIR)/project/project.yaml $(DEMO_DIR)/bids $(DEMO_DIR)/derivatives --site $$site \
	    --participant-label $$(awk -F'\t' -v site=$$site 'NR == 1 {for (i = 1; i <= NF; i++) if ($$i == "site") c = i} NR > 1 && $$c == site {print $$1}' $(DEMO_DIR)/bids/participants.tsv) \
	    --out $(DEMO_DIR)/bundles/$$site.tar.gz || exit 1; \
	done
	neurolearn project pool $(DEMO_DIR)/project/project.yaml $(DEMO_DIR)/bundles/siteA.tar.gz $(DEMO_DIR)/bundles/siteB.tar.gz --out $(DEMO_DIR)/pool
	@echo ""
	@echo "example dataset:        $(DEMO_DIR)/bids"
	@echo "derivatives:            $(DEMO_DIR)/derivatives/sub-*/"
	@echo "participant reports:    $(DEMO_DIR)/derivatives/sub-*.html"
	@echo "group QC reports:       $(DEMO_DIR)/derivatives/group_T1w.html $(DEMO_DIR)/derivatives/group_bold.html"
	@echo "pattern analysis:       $(DEMO_DIR)/derivatives/mvpa/patients_vs_controls/report.html"
	@echo "methods text:           $(DEMO_DIR)/derivatives/logs/CITATION.md"
	@echo "site bundles:           $(DEMO_DIR)/bundles/"
	@echo "project report:         $(DEMO_DIR)/pool/report.html"

test: install
	$(PYTHON) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-heavy: install
	NEUROLEARN_TEST_HEAVY=1 $(PYTHON) -m pytest -m heavy $(PYTEST_ARGS)

bench: install
	$(PYTHON) benchmarks/engine.py

completions: install
	$(PYTHON) -m neurolearn_cli.completions completions

lint: install
	$(PYTHON) -m ruff check neurolearn_cli tests benchmarks
	$(PYTHON) -m mypy
	$(PYTHON) -m pytest -q tests/test_containers.py

clean:
	rm -rf $(DEMO_DIR) build *.egg-info .pytest_cache
