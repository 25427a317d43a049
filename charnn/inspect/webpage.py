"""One self-contained HTML page of an inspection: the text coloured by surprise or by any traced
unit (a menu picks which), the model's top guesses on hover. No external files or scripts."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from charnn.fileio import write_atomic

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>charnn inspect: {title}</title>
<style>body{{background:#111;color:#ddd;font:14px system-ui,sans-serif;margin:1.5em}}
pre{{font:13px/1.45 ui-monospace,monospace;white-space:pre-wrap;color:#eee}}
#tip{{position:fixed;display:none;background:#222;border:1px solid #555;padding:.4em .6em;font:12px monospace}}
</style></head><body><h3>{title}</h3><p>{summary}</p>
<label>colour by <select id="by"></select></label><pre id="t"></pre><div id="tip"></div>
<script id="data" type="application/json">{data}</script><script>
const D=JSON.parse(document.getElementById('data').textContent),t=document.getElementById('t'),
tip=document.getElementById('tip'),by=document.getElementById('by');
for(const k of ['surprise',...Object.keys(D.units)]){{const o=document.createElement('option');o.textContent=k;by.appendChild(o)}}
const spans=D.starts.map((s,i)=>{{const e=document.createElement('span');
e.textContent=D.text.slice(s,i+1<D.starts.length?D.starts[i+1]:D.text.length);e.dataset.i=i;t.appendChild(e);return e}});
function mix(a,b,x){{return a.map((v,j)=>Math.round(v+(b[j]-v)*x))}}
function colour(){{const k=by.value,u=D.units[k],m=u?Math.max(1e-9,...u.map(Math.abs)):0;
spans.forEach((e,i)=>{{let c;if(!u){{const x=Math.min(1,(D.bits[i]||0)/8);
c=x<.5?mix([30,30,40],[200,120,0],x/.5):mix([200,120,0],[230,20,20],(x-.5)/.5)}}
else{{const v=u[i]/m;c=v>=0?mix([30,30,40],[220,40,40],v):mix([30,30,40],[40,90,230],-v)}}
e.style.background='rgb('+c+')'}})}}
by.onchange=colour;colour();
t.onmousemove=ev=>{{const i=ev.target.dataset.i;if(i===undefined){{tip.style.display='none';return}}
const g=D.guesses[i].map(([s,p])=>JSON.stringify(s)+' '+(100*p).toFixed(1)+'%').join('<br>');
const us=Object.keys(D.units).map(k=>k+': '+D.units[k][i].toFixed(3)).join('<br>');
tip.innerHTML=(D.bits[i]==null?'(given)':D.bits[i].toFixed(2)+' bits')+'<br>'+(g||'')+(us?'<hr>'+us:'');
tip.style.left=(ev.clientX+12)+'px';tip.style.top=(ev.clientY+12)+'px';tip.style.display='block'}};
</script></body></html>
"""


def page(result, tokenizer) -> str:
    """The page for an ``Inspection`` (charnn.inspect.session), one coloured span per token."""
    s = result.surprise
    lay = s.layout
    first_char = lay.starts
    data = {
        "text": lay.text,
        "starts": lay.starts.tolist(),
        "bits": [None if math.isnan(b) else round(float(b), 2) for b in s.token_bits],
        "guesses": [[[tokenizer.decode([int(i)]), round(float(p), 4)] for i, p in zip(ids, probs, strict=True) if i >= 0]
                    for ids, probs in zip(s.guess_ids, s.guess_probs, strict=True)],
        "units": {u.name: [round(float(v), 4) for v in vals[first_char.clip(0, max(len(vals) - 1, 0))]]
                  for u, vals in result.units.items() if len(vals)},
    }
    blob = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")  # no early end of the script tag
    summary = (f"{result.cell} {result.layers}x{result.hidden}: {result.bits_per_char:.4f} bits/char over "
               f"{len(lay.text):,} characters; hover a character for the model's top guesses")
    return PAGE.format(title=html.escape(result.checkpoint), summary=html.escape(summary), data=blob)


def write_page(path: str | Path, result, tokenizer) -> None:
    body = page(result, tokenizer).encode("utf-8")
    write_atomic(Path(path).expanduser(), lambda f: f.write(body))
