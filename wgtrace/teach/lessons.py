"""Lessons as data: lessons/<name>/{lesson.toml,en.toml,zh.toml}.

lesson.toml names the lab and the probe (``probe = { src, dst, tcp }``), and may give a stage a
probe of its own (``[probes] STAGE = { src, dst, family }``: the pair that stage is about, for that
stage only; ``family = 6`` probes a dual-stack destination over IPv6). Each language file has the texts for every stage of the lab's walkthrough and the
observation it states, as an ``expect`` table (cause, node, direction, or reachable = true) that
tests check against the real lab. Commands are not in the lesson: they come from the lab file,
filled with real keys.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field

from ..errors import LabFileError
from ..model import data_dir
from ..texts import LANGS

LESSONS_DIR = data_dir("lessons")


@dataclass(frozen=True)
class Probe:
    src: str
    dst: str
    tcp: int | None = None
    family: int | None = None        # 4 or 6 where the destination has both; None: IPv4 first


@dataclass
class LessonStage:
    name: str
    goal: str
    observe: str
    why: str
    note: str
    expect: dict


@dataclass
class Lesson:
    name: str
    lab: str
    src: str
    dst: str
    lang: str
    title: str
    intro: str
    stages: list[LessonStage] = field(default_factory=list)
    tcp_port: int | None = None
    probes: dict[str, Probe] = field(default_factory=dict)     # stage name -> its own probe

    def probe(self, index: int) -> Probe:
        """The probe sent after stage ``index``: the stage's own, else the lesson's."""
        st = self.stages[min(index, len(self.stages) - 1)] if self.stages else None
        return self.probes.get(st.name) if st and st.name in self.probes else Probe(self.src, self.dst)


def available_lessons() -> list[str]:
    return sorted(p.name for p in LESSONS_DIR.iterdir() if (p / "lesson.toml").is_file()) \
        if LESSONS_DIR.is_dir() else []


def _probe(where: str, p) -> Probe:
    if not isinstance(p, dict) or not isinstance(p.get("src"), str) or not isinstance(p.get("dst"), str):
        raise LabFileError(f"{where}: needs src and dst (the nodes the lesson probes between).")
    tcp = p.get("tcp")
    if tcp is not None and (not isinstance(tcp, int) or not 0 < tcp < 65536):
        raise LabFileError(f"{where}: tcp is a port, 1 to 65535.")
    fam = p.get("family")
    if fam not in (None, 4, 6):
        raise LabFileError(f"{where}: family is 4 or 6.")
    return Probe(p["src"], p["dst"], tcp, fam)


def load_lesson(name: str = "seed", lang: str = "en") -> Lesson:
    d = LESSONS_DIR / name
    meta_path = d / "lesson.toml"
    if not meta_path.is_file():
        raise LabFileError(f"unknown lesson {name!r} (lessons: {', '.join(available_lessons()) or 'none'}).")
    if lang not in LANGS:
        raise LabFileError(f"no language {lang!r}; choose one of {', '.join(LANGS)}.")
    try:
        meta = tomllib.loads(meta_path.read_text(encoding="utf-8"))
        text = tomllib.loads((d / f"{lang}.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise LabFileError(f"lesson {name!r} ({lang}) cannot be read: {e}") from None
    probe = _probe(f"{meta_path}: probe", meta.get("probe"))
    lesson = Lesson(name, meta["lab"], probe.src, probe.dst, lang,
                    text.get("title", name), text.get("intro", ""), tcp_port=probe.tcp)
    for i, st in enumerate(text.get("stage", [])):
        try:
            lesson.stages.append(LessonStage(st["name"], st.get("goal", ""), st.get("observe", ""),
                                             st.get("why", ""), st.get("note", ""), dict(st["expect"])))
        except KeyError as e:
            raise LabFileError(f"{d / (lang + '.toml')}: stage[{i}]: missing {e}") from None
    names = {s.name for s in lesson.stages}
    for stage, p in (meta.get("probes") or {}).items():
        if stage not in names:
            raise LabFileError(f"{meta_path}: probes: no stage {stage!r} in this lesson.")
        lesson.probes[stage] = _probe(f"{meta_path}: probes.{stage}", p)
    return lesson


def matches(expect: dict, cause: str, stop) -> bool:
    """Does a verdict (its cause and ``Stop``) agree with a lesson's stated observation?
    ``direction`` in a lesson file is the stop's phase: request or reply."""
    if expect.get("reachable"):
        return cause == "reachable"
    if cause != expect.get("cause") or stop is None:
        return False
    return expect.get("node") in (None, stop.node) and expect.get("direction") in (None, stop.phase)
