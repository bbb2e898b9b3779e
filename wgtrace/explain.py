"""Turn a verdict into the words a teacher would use (texts/causes.toml, English and Chinese)."""
from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

TEXTS = Path(__file__).resolve().parent / "texts" / "causes.toml"


@lru_cache(maxsize=1)
def texts() -> dict:
    return tomllib.loads(TEXTS.read_text(encoding="utf-8"))


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def explain(cause: str, params: dict, lang: str = "en") -> str:
    table = texts().get(lang) or texts()["en"]
    return table.get(cause, cause).format_map(_Blank({k: v for k, v in params.items() if v is not None}))


_ZH_STORY = [
    (r"^(\S+) answered: the reply came back to (\S+)\.$", r"\1 作出了应答,回包回到了 \2。"),
    (r"^the (request|reply) was seen entering (\S+) on (\S+), never left \S+\.$", r"{\1}在 \2 的 \3 上被看到进入,之后没有离开 \2。"),
    (r"^the (request|reply) was seen leaving (\S+) on (\S+), never arrived at (\S+) on (\S+)\.$",
     r"{\1}从 \2 的 \3 发出,但没有到达 \4 的 \5。"),
    (r"^the (request|reply) was seen leaving (\S+) on (\S+); no WireGuard datagram carried it out of \S+\.$",
     r"{\1}从 \2 的 \3 进入了隧道,但没有任何 WireGuard 数据报把它带出 \2。"),
    (r"^the (request|reply)'s WireGuard datagram reached (\S+) on (\S+), but WireGuard on \S+ never "
     r"delivered the packet inside to (\S+)\.$", r"携带{\1}的 WireGuard 数据报到达了 \2 的 \3,但 \2 上的 WireGuard 没有把里面的包交给 \4。"),
    (r"^(\S+) refused to send it: (.*)$", r"\1 拒绝发送:\2"),
    (r"^it never left (\S+)$", r"包没有离开 \1"),
]


def story(trace, lang: str = "en") -> str:
    """The trace's one-sentence story in the chosen language."""
    import re
    text = trace.story
    if lang != "zh":
        return text
    for pat, rep in _ZH_STORY:
        m = re.match(pat, text)
        if m:
            return m.expand(rep).replace("{request}", "请求包").replace("{reply}", "回包")
    return text
