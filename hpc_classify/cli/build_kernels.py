"""`python -m hpc_classify.cli.build_kernels`: build the CPU attention kernel ahead, once per CPU kind
(bootstrap, a login node of the same CPU kind as the compute nodes); exit status 1 with the reason where it
cannot be built (the engines then run the bias attention)."""

import sys

from hpc_classify.engine.tiled_attention import main

if __name__ == "__main__":
    sys.exit(main())
