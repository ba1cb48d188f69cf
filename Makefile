# Two commands matter: `make demo` and `make test`. Both use the same .venv.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export MPLBACKEND ?= Agg

.PHONY: demo test install golden keras-data clean

install: $(STAMP)

# torch/torchvision are pinned to the builds this machine serves from local disk.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/archsim compare vgg16 vgg19
	$(VENV)/bin/archsim figures -o figures
	$(VENV)/bin/neurn figures -o figures
	$(VENV)/bin/neurn bench --quick

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# Regenerate tests/golden/*.txt after an intentional tokenizer change; review the diff.
golden: $(STAMP)
	$(PY) tests/golden/regenerate.py

# Rebuild archsim/models/data/keras.json.gz (the keras: sequences shipped so figures need no Keras).
keras-data: $(STAMP)
	$(PY) -m archsim.models.keras_source

clean:
	rm -rf $(VENV) build *.egg-info
