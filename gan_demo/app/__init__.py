"""The app layer: the Gradio tabs (ui/), the request service, the Train tab's job manager (jobs/), per-session runs
and memory trimming. The one layer that imports both the library (gan_demo) and the trainer (training, only in
jobs/, which the Train tab imports on first use). Importing this package imports nothing."""
