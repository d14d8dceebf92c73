"""The ranking Space: hf-logme's Gradio app (hf_logme/app.py) with the limits of a shared CPU."""

from hf_logme.app import build_app

build_app(max_candidates=5, allow_local_paths=False, max_rows=2000).queue().launch()
