"""Launch the gan_demo web app: `python app.py [--port N] [--host ADDR] [--share] [--preload]`.

Checkpoints come from weights/ (or $GAN_DEMO_WEIGHTS_DIR) and load on first use, on CUDA when present, else Apple's
MPS, else the CPU ($GAN_DEMO_DEVICE overrides). Gradio's own variables (GRADIO_SERVER_PORT, GRADIO_SERVER_NAME) apply
when the flags are not given. On Hugging Face Spaces (SPACE_ID set) every model is loaded before serving.
The Train tab (gan_demo/app/jobs/): GAN_DEMO_MAX_RUNS (runs at once, default 1), GAN_DEMO_RUN_TIME_LIMIT_S (default
600), GAN_DEMO_RUNS_DIR (default runs/ui), GAN_DEMO_DATA (datasets; default ./data, else ../shared/data).
Limits: GAN_DEMO_MAX_BODY_MB (request bodies, default 2), GAN_DEMO_MAX_UPLOAD_MB (uploads, where a component takes
them, default 10), GAN_DEMO_RUNS_QUOTA_MB (the runs folder, default 2048), GAN_DEMO_MAX_RUNS_PER_CLIENT (default 2).
"""
import argparse
import os

from gan_demo.app import memory

memory.limit_arenas()           # before the imports below start their threads (see gan_demo/app/memory.py)

from gan_demo.app import http_limits, service  # noqa: E402
from gan_demo.app.ui import LAUNCH_OPTIONS, build_app  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT, else 7860 or next free)")
    p.add_argument("--host", default=None, help="address to listen on (default: $GRADIO_SERVER_NAME, else 127.0.0.1)")
    p.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link")
    p.add_argument("--preload", action="store_true", help="load every checkpoint before serving (default on Spaces)")
    p.add_argument("--hub-repo", default=None, metavar="OWNER/REPO[@REV]",
                   help="take every model's weights from this Hugging Face Hub repository instead of weights/ "
                        "(same as $GAN_DEMO_HUB_REPO)")
    args = p.parse_args()
    if args.hub_repo:
        os.environ["GAN_DEMO_HUB_REPO"] = args.hub_repo
    if args.preload or os.environ.get("SPACE_ID"):
        # ZeroGPU runs each call in a short-lived process: models must be loaded here, in the main one
        for name, status in service.STORE.preload().items():
            print(f"  {name}: {status}")
    demo = build_app()
    # request bodies and uploads bounded before they are read (gan_demo/app/http_limits.py)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, **LAUNCH_OPTIONS,
                **http_limits.launch_options(demo))


if __name__ == "__main__":
    main()
