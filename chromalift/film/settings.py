"""A film run's defaults, torch-free so that `colorize --help` shows them at once (docs/films.md: how they
were chosen)."""

CUT_THRESHOLD = 12.0   # a cut needs a mean |change in L| (0-100) between frames of at least this ...
CUT_RATIO = 3.0        # ... and this many times the median change of the frames around it
STEADY = 0.8           # SteadyColour strength by default
MAX_FRAME_PIXELS = 40_000_000   # a frame is colorized whole, in floats (about 90 bytes a pixel at its peak):
                                # 8K UHD (33 MP) fits; a 12000 x 12000 frame would need 13 GB
