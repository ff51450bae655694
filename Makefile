# The README's commands. `make demo` and `make test` work on a fresh clone with only Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo
DEMO_PATIENTS ?= 25

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

# The main job on the embedded default: synthetic patients -> SQLite store -> a clinician's view,
# then 45 days of one wearer's minute data (an infection starts on 2025-12-21) through the
# personal-baseline monitors into the alert book; then the twin of a person with type 1 diabetes,
# a patient's pharmacogenomic report, vancomycin and warfarin doses, and cardiovascular risk from
# the record with a ranked prevention what-if (a diet change runs the Hall body-weight model), an
# adult's body-weight twin fitted to their check-ups with a year-ahead what-if,
# and a model brought as an SBML file, simulated with a changed parameter.
DEMO_WEARER ?= 24
# ... and the person with type 1 diabetes: their CGM, meals and pump insulin, their CGM report
# (time in ranges against the consensus targets, and the ambulatory glucose profile as a plot), a
# twin fitted to them, a 2-hour forecast and a what-if (an afternoon snack, a correction bolus).
DEMO_T1D ?= 7
DEMO_T1D_FILE ?= 00007
# ... and a warfarin start (synth --warfarin 2 gives SYN-42-0 and SYN-42-1 one; SYN-42-0 needs more
# than 15 mg a day, which the recommendation refuses): the daily dose in tablets from the INRs, and
# the stroke and bleeding risk of the atrial fibrillation it was started for (CHA2DS2-VASc, HAS-BLED).
# Last, a record as UK general practice sends it (examples/records/uk-gp-record.json: SNOMED CT
# codes, SI units, dm+d, an NHS number): QRISK3 and SCORE2 at its last check-up, with the
# Townsend score no record holds given by hand.
DEMO_WARFARIN ?= 1
# ... and an adult's body-weight twin from their yearly check-ups (SYN-42-2: eight weights, a man
# gaining about 7 kg): the habitual intake it implies and a year ahead with less food or more activity;
# then his circulation fitted to his resting blood pressure and heart rate, and what losing a litre of
# blood (replaced by colloid, or not) would do to his mean arterial pressure.
DEMO_WEIGHT ?= 2
# The synthetic record runs up to today, so that dose recommendations, risk scores and the
# monitors read a current record (a fixed date would make every check-up and course look old).
DEMO_TODAY ?= $(shell date -u +%F)
demo: $(VENV)/.installed
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BIN)/medtwin synth --patients $(DEMO_PATIENTS) --seed 42 --wearables-days 45 --onset-fraction 0.5 \
		--genotypes --vancomycin 2 --warfarin 2 --today $(DEMO_TODAY) $(DEMO)/patients
	$(BIN)/medtwin import $(DEMO)/patients --store $(DEMO)/medtwin.db
	$(BIN)/medtwin import $(DEMO)/patients-genotypes/vcf $(DEMO)/patients-pharmacy/fhir --store $(DEMO)/medtwin.db
	$(BIN)/medtwin patients --store $(DEMO)/medtwin.db --limit 10
	$(BIN)/medtwin show SYN-42-0 --store $(DEMO)/medtwin.db
	$(BIN)/medtwin import $(DEMO)/patients-wearables/streams/patient-000$(DEMO_WEARER) --store $(DEMO)/medtwin.db
	$(BIN)/medtwin monitor run SYN-42-$(DEMO_WEARER) --monitors rhr,nightsignal,artefact --save --store $(DEMO)/medtwin.db
	$(BIN)/medtwin alerts --store $(DEMO)/medtwin.db
	$(BIN)/medtwin import $(DEMO)/patients-wearables/streams/patient-$(DEMO_T1D_FILE) --store $(DEMO)/medtwin.db
	$(BIN)/medtwin cgm SYN-42-$(DEMO_T1D) --plot $(DEMO)/agp.html --store $(DEMO)/medtwin.db
	$(BIN)/medtwin twin fit SYN-42-$(DEMO_T1D) --store $(DEMO)/medtwin.db
	$(BIN)/medtwin forecast SYN-42-$(DEMO_T1D) --hours 2 --store $(DEMO)/medtwin.db
	$(BIN)/medtwin whatif SYN-42-$(DEMO_T1D) --scenario examples/scenarios/afternoon-snack.json \
		--scenario examples/scenarios/correction-bolus.json --plot $(DEMO)/whatif.html --store $(DEMO)/medtwin.db
	$(BIN)/medtwin twin fit SYN-42-$(DEMO_WEIGHT) --model hall_2011_body_weight --store $(DEMO)/medtwin.db
	$(BIN)/medtwin whatif SYN-42-$(DEMO_WEIGHT) --model hall_2011_body_weight --ahead --days 365 \
		--scenario examples/scenarios/eat-300-kcal-less.json --scenario examples/scenarios/more-activity.json \
		--plot $(DEMO)/weight-whatif.html --store $(DEMO)/medtwin.db
	$(BIN)/medtwin twin fit SYN-42-$(DEMO_WEIGHT) --model cardiovascular_ursino --store $(DEMO)/medtwin.db
	$(BIN)/medtwin whatif SYN-42-$(DEMO_WEIGHT) --model cardiovascular_ursino --ahead --hours 1 --members 100 \
		--scenario examples/scenarios/blood-loss-1000ml.json --scenario examples/scenarios/blood-loss-1000ml-colloid.json \
		--store $(DEMO)/medtwin.db
	$(BIN)/medtwin pgx report SYN-42-0 --store $(DEMO)/medtwin.db
	$(BIN)/medtwin dose recommend --patient SYN-42-0 --model vancomycin_goti2018 --store $(DEMO)/medtwin.db
	$(BIN)/medtwin dose recommend --patient SYN-42-$(DEMO_WARFARIN) --model warfarin_hamberg2007 --store $(DEMO)/medtwin.db
	$(BIN)/medtwin risk SYN-42-$(DEMO_WARFARIN) --score cha2ds2_vasc --score has_bled --store $(DEMO)/medtwin.db
	$(BIN)/medtwin risk SYN-42-4 --whatif quit_smoking,sbp=-10,statin,weight=-5kg,diet=-500kcal --store $(DEMO)/medtwin.db
	$(BIN)/medtwin import examples/records/uk-gp-record.json --store $(DEMO)/medtwin.db
	$(BIN)/medtwin risk 9990001235 --date 2025-06-30 --score qrisk3_10y --score score2_10y \
		--set townsend_score=2.1 --whatif quit_smoking --store $(DEMO)/medtwin.db
	$(BIN)/medtwin simulate --model src/medtwin/model/data/sbml/bergman_1979_core.xml --hours 6 --set p3=1e-4

test: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_timeline.py
	$(BIN)/python benchmarks/bench_ndjson_memory.py
	$(BIN)/python benchmarks/bench_scores.py
	$(BIN)/python benchmarks/bench_all_scores.py
	$(BIN)/python benchmarks/bench_uva_padova.py
	$(BIN)/python benchmarks/bench_sbml.py
	$(BIN)/python benchmarks/bench_calibrate.py
	$(BIN)/python benchmarks/bench_assimilate.py
	$(BIN)/python benchmarks/bench_tdm.py
	$(BIN)/python benchmarks/bench_pgx.py
	$(BIN)/python benchmarks/bench_monitors.py
	$(BIN)/python benchmarks/bench_apple_health.py --size-mb 256
	$(BIN)/python benchmarks/bench_cgm_export.py
	$(BIN)/python benchmarks/bench_cgm_panel.py
	$(BIN)/python benchmarks/bench_glucose_monitor.py
	$(BIN)/python benchmarks/bench_mqtt_latency.py --duration-s 60

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache medtwin.db*
