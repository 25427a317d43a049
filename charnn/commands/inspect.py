"""``charnn inspect``: what the network learned, printed (charnn/inspect/ holds the logic)."""

from __future__ import annotations

import sys

from charnn.errors import CharnnError

SHOW_CHARS = 3000  # characters of the text coloured in the terminal; --html shows all of it


def cmd_inspect(args) -> int:
    import json

    from charnn.inspect.session import (
        inspect_text,
        load_for_inspection,
        parse_unit,
        read_text_arg,
        to_json,
    )
    from charnn.runtime.device import set_cpu_threads

    specs = args.checkpoint or [None]
    if len(specs) > 1 and not args.gradients:
        raise CharnnError("Several --checkpoint options go with --gradients only (one line per model).")
    text = read_text_arg(args.text, args.encoding)
    set_cpu_threads()
    if args.gradients:
        return _inspect_gradients(args, specs, text)
    loaded = load_for_inspection(specs[0], args.device)
    if args.signal and not args.unit:
        raise CharnnError("--signal chooses a value of --unit LAYER:N; give --unit too.")
    default_signal = "c" if loaded.model.config.cell not in ("gru", "rnn") else "h"
    units = (parse_unit(args.unit, args.signal or default_signal, loaded.model),) if args.unit else ()
    result = inspect_text(loaded, text, units, find=args.find)
    if args.html:
        from charnn.inspect.webpage import write_page

        write_page(args.html, result, loaded.tokenizer)
    if args.json:
        print(json.dumps(to_json(result)))
        return 0
    _print_inspection(result, sys.stdout.isatty())
    if args.html:
        print(f"page written to {args.html}")
    return 0


def _print_inspection(result, colour: bool) -> None:
    import numpy as np

    from charnn.inspect import colours

    s, text = result.surprise, result.text
    if colour:
        from rich.console import Console
        from rich.text import Text

        shown = text[:SHOW_CHARS]
        unit = next(iter(result.units.values()), None)
        rgb = (colours.signed_rgb(unit[: len(shown)]) if unit is not None
               else colours.surprise_rgb(s.char_bits[: len(shown)]))
        body = Text()
        for piece, hex_colour in colours.runs(shown, rgb):
            body.append(piece, style=f"on {hex_colour}")
        Console(highlight=False).print(body)
        if len(text) > SHOW_CHARS:
            print(f"(the first {SHOW_CHARS:,} of {len(text):,} characters; --html shows them all)")
    print(f"{s.bits_per_char:.4f} bits/char over {len(text):,} characters ({result.cell} "
          f"{result.layers}x{result.hidden}, {result.checkpoint})")
    hot = ", ".join(f"{text[a:b]!r} {bits:.1f} bits" for a, b, bits in s.hot_spans())
    print(f"most surprising: {hot}")
    for u, values in result.units.items():
        print(f"unit {u.name}: min {np.min(values):.3f}, mean {np.mean(values):.3f}, max {np.max(values):.3f}")
    f = result.findings
    if f is not None:
        print(f"\n{'probe':<16} {'unit':>9} {'signal':>6} {'r':>7}")
        for m in f.matches:
            print(f"{m.probe:<16} {f'{m.layer}:{m.unit}':>9} {m.signal:>6} {m.r:>7.3f}")
        for probe in f.probes:
            if f.best(probe) is None:
                print(f"{probe:<16} {'(constant in this text)':>24}")
        print("\ngate saturation (share of steps x units below 0.1 / above 0.9)")
        for g in f.saturation:
            print(f"layer {g.layer} {g.gate}: {g.left:6.1%} shut {g.right:6.1%} open")


def _inspect_gradients(args, specs: list, text: str) -> int:
    import json

    from charnn.inspect.gradients import gradient_flow
    from charnn.inspect.session import encode, load_for_inspection

    flows = []
    for spec in specs:
        loaded = load_for_inspection(spec, args.device)
        ids = encode(loaded.tokenizer, text)
        flows.append(gradient_flow(loaded.model, ids, window=args.window, checkpoint=str(loaded.path)))
    if args.json:
        print(json.dumps({"gradients": [{"checkpoint": g.checkpoint, "cell": g.cell, "norms": g.norms}
                                        for g in flows]}))
        return 0
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256) if k <= args.window]
    print("mean |dL_t/dh_(t-k)|  " + "".join(f"{f'k={k}':>10}" for k in ks))
    for g in flows:
        print(f"{g.cell:<6} {g.checkpoint[-14:]:>14} " + "".join(f"{g.at(k) or 0.0:>10.2e}" for k in ks))
    return 0
