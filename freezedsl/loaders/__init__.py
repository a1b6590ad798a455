"""The pieces behind :mod:`freezedsl.loading`, one idea per module.

* :mod:`.base` -- :class:`LoadedModel`, checkpoint key names, canonical parameter names
  and the one-line message helpers every loader shares;
* :mod:`.arch` -- architecture strings (``package.module:callable``), which import and
  run code by design, like ``python -c``;
* :mod:`.kinds` -- what a MODEL path is (regular file, zip, legacy pickle, TorchScript),
  from its bytes alone;
* :mod:`.unpickle` -- bounded ``weights_only`` loading: the pickle's opcodes are scanned
  before anything is built, so a small file cannot take unbounded time or memory;
* :mod:`.statedict` -- fitting a state dict to the architecture that should hold it;
* :mod:`.writing` -- writing a model back in the kind it was read.

Import from :mod:`freezedsl.loading`; these modules are its implementation.
"""
