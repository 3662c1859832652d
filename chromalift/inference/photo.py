"""What a Colorizer does with a photo, whatever engine runs the network: the global path on a square copy
of the model's global size (of the photo, or of a reference photo: the paper's style transfer), the local
path on the photo at most `process_size` on its longer side (and with the weights' `coarse_blend` once more
at the global size, blended in), then the full-size colours around the photo's own luminance.

The two Colorizers (colorizer.py: PyTorch and ONNX Runtime on tensors; numpy_engine.py: NumPy, no torch
import) share these methods and differ only in the array primitives below. Torch-free by design."""
from __future__ import annotations

from chromalift.inference.geometry import DEFAULT_PROCESS_SIZE, coarse_shape, process_shape
from chromalift.io.photos import NOTE


class PhotoColorizer:
    """The photo methods; a subclass supplies `name`, `classes` and the primitives (the methods that raise
    NotImplementedError), each on its own array type."""
    name: str
    classes: list[str]

    # ---- primitives, one array type per subclass
    def _l(self, rgb):
        """(H, W, 3) uint8, or float in [0, 1] -> full-size L."""
        raise NotImplementedError

    def _size(self, l) -> tuple[int, int]:
        raise NotImplementedError

    def _resize(self, l, size: tuple[int, int], *, antialias: bool):
        raise NotImplementedError

    def _global_prior(self, l_global, *, scores: bool):
        """L at the global size -> (prior, class scores or None)."""
        raise NotImplementedError

    def _local_pass(self, l_small, prior):
        """L at the processing size -> its ab (Lab units) from one pass of the local path."""
        raise NotImplementedError

    def _blend(self, ab, ab_coarse, share: float):
        """ab with `share` of ab_coarse, that enlarged to ab's size."""
        raise NotImplementedError

    def _render(self, l, ab_small, *, bits: int, hints=None):
        """Full-size L and the small ab (and colour hints, where the engine has them) -> (H, W, 3) sRGB."""
        raise NotImplementedError

    def _probabilities(self, logits) -> list[float]:
        raise NotImplementedError

    def _setting(self, key: str):
        """A setting of the weights' model config (global_size, coarse_blend)."""
        raise NotImplementedError

    # ---- the photo methods
    @property
    def note(self) -> str:
        """What an output says about its colours."""
        return f"{NOTE}, model: {self.name}"

    def top_classes(self, logits, k: int = 3) -> list[tuple[str, float]]:
        """The k most probable scene classes (name, probability) from the classifier's scores."""
        if logits is None or not self.classes:
            return []
        p = self._probabilities(logits)
        order = sorted(range(len(p)), key=lambda i: -p[i])[:k]
        return [(self.classes[i], p[i]) for i in order]

    def prior(self, rgb, *, scores: bool = True):
        """The global prior (1, C; C = 256 at the paper's width) and class scores of a photo ((H, W, 3) uint8, or
        float in [0, 1]). scores=False: the prior alone (the scores come back None; weights whose scene
        scores alone see the mirror image then skip it)."""
        return self._prior_from_l(self._l(rgb), scores=scores)

    def _prior_from_l(self, l, *, scores: bool = True):
        g = self._setting("global_size")
        return self._global_prior(self._resize(l, (g, g), antialias=True), scores=scores)

    def _small(self, l, size: tuple[int, int]):
        """L at the processing size, as the local path sees it (antialiased only when it shrinks)."""
        h, w = self._size(l)
        return l if tuple(size) == (h, w) else self._resize(l, size, antialias=size[0] * size[1] < h * w)

    def predict_ab_small(self, l, prior, *, process_size: int | None = DEFAULT_PROCESS_SIZE, ab_filter=None):
        """Full-size L and a prior -> ab at the size the local path saw (process_shape). ab_filter(l_small,
        ab_small) -> ab_small, if given, sees both there (the film path's temporal filter)."""
        ph, pw = process_shape(*self._size(l), process_size)
        l_small = self._small(l, (ph, pw))
        ab = self._local_pass(l_small, prior)
        share = self._setting("coarse_blend")
        coarse = coarse_shape(ph, pw, self._setting("global_size")) if share else None
        if coarse:   # the photo at the scale the network trained at too: that share of its colours
            ab = self._blend(ab, self._local_pass(self._resize(l_small, coarse, antialias=True), prior), share)
        return ab_filter(l_small, ab) if ab_filter is not None else ab

    def colorize(self, rgb, *, reference=None, process_size: int | None = DEFAULT_PROCESS_SIZE, prior=None,
                 bits: int = 8, hints=None):
        """(H, W, 3) RGB, uint8 or float in [0, 1] (colour or grey) -> (H, W, 3) colorized RGB, uint8, or uint16
        with bits=16 (a 16-bit scan's L kept at its precision).

        The global features come from `reference` when given (style transfer), or from `prior`. `hints`
        (points and strokes in the photo's pixels) recolour what they touch along the photo's structure."""
        l = self._l(rgb)
        if prior is None:   # the photo's own L serves the global path too: no second Lab conversion
            prior, _ = (self.prior(reference, scores=False) if reference is not None
                        else self._prior_from_l(l, scores=False))
        ab = self.predict_ab_small(l, prior, process_size=process_size)
        return self._render(l, ab, bits=bits, hints=hints)

    def colorize_and_classify(self, rgb, *, prior=None, process_size: int | None = DEFAULT_PROCESS_SIZE,
                              bits: int = 8, hints=None):
        """colorize(), and the photo's own scene class scores from the same global pass and the same Lab
        conversion; `prior` (e.g. a reference's) sets the colour mood instead of the photo's own."""
        l = self._l(rgb)
        own_prior, logits = self._prior_from_l(l)
        ab = self.predict_ab_small(l, own_prior if prior is None else prior, process_size=process_size)
        return self._render(l, ab, bits=bits, hints=hints), logits
