"""Defaults the command line shows before anything heavy is imported (torch takes a second or two)."""

# The local path sees photos at most this large (longer side); colour is added back at full size.
# Measured by benchmarks/process_size.py on enlarged MiniPlaces validation photos (never the test sets):
# PSNR falls as the local path sees a photo larger than the scale the model was trained at (128 px),
# by 0.17 dB at 256 and 0.7-1.3 dB at the photo's own 512-1024 px, where colour also turns patchier.
# 256 keeps twice the chroma detail of 128 for real, detailed photos at nearly the best score.
DEFAULT_PROCESS_SIZE = 256

CUT_THRESHOLD = 12.0   # films: a cut needs a mean |change in L| (0-100) between frames of at least this ...
CUT_RATIO = 3.0        # ... and this many times the median change of the frames around it
STEADY = 0.8           # SteadyColour strength by default (benchmarks/flicker.py: 0.9 gains little more)
