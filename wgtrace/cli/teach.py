"""Course commands: ``walk``, ``lesson``, ``exercise``, ``check``, ``report``."""
from __future__ import annotations

import sys
from typing import List, Optional

import typer

from .common import (check_name, emit, err, finish, guarded, json_opt, lab_opt, lang_of, lang_opt, out,
                     params_of, set_opt)


@guarded
def walk(lesson: str = typer.Argument("seed", help="Lesson to walk through (lessons/: one per lab)."),
         lang: str = lang_opt(),
         yes: bool = typer.Option(False, "--yes", "-y", help="Run every stage without pausing."),
         keep: bool = typer.Option(False, "--keep", help="Leave the lab up at the end."),
         name: Optional[str] = typer.Option(None, "--name", help="Run the lab under another name.")):
    """A lab's lesson on a real lab, stage by stage: each stage's commands, where the probe stops, why."""
    from ..lab.preflight import require_root
    from ..lab.signals import interruptible
    from ..output.walk_view import WalkView
    from ..teach.lessons import load_lesson
    from ..teach.walk import walk as run_walk
    require_root()
    check_name(name)
    les = load_lesson(lesson, lang_of(lang))
    view = WalkView(out, les)
    out.print(f"[bold]{les.title}[/]\n{les.intro.strip()}", highlight=False)

    def pause(i: int) -> bool:
        if yes or not sys.stdin.isatty():
            return True
        try:
            return typer.prompt("Enter for the next stage, q to stop", default="", show_default=False) != "q"
        except typer.Abort:          # Ctrl-C or Ctrl-D at the prompt
            raise KeyboardInterrupt from None
    with interruptible() as check:
        res = run_walk(les, name=name, keep=keep, on_event=lambda k, d: (check(k), view(k, d)), pause=pause)
    finish(res.ok)


@guarded
def lesson(lesson: str = typer.Argument("seed", help="Lesson to work through (lessons/)."),
           lang: str = lang_opt(),
           restart: bool = typer.Option(False, "--restart", help="Forget saved progress and start over."),
           name: Optional[str] = typer.Option(None, "--name", help="Run the lab under another name.")):
    """Guided mode: type each stage's commands yourself; the lab checks when the stage holds."""
    from ..lab.preflight import require_root
    from ..teach.lessons import load_lesson
    from ..teach.guided import GuidedLesson
    require_root()
    check_name(name)
    styles = {"info": "", "ok": "bold green", "bad": "red", "cmd": "cyan", "out": "dim"}
    # soft_wrap: commands are never broken across lines, so they can be copied and pasted
    g = GuidedLesson(load_lesson(lesson, lang_of(lang)),
                     lambda k, t: out.print(t, style=styles.get(k, ""), soft_wrap=True, markup=False,
                                            highlight=False), restart, name)
    out.print(f"[bold]{g.lesson.title}[/]", highlight=False)
    g.start()
    g.cmd_help()
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    g.run_prompt(input, lambda msg: err.print(f"[bold red]wgtrace:[/] {msg}", highlight=False))


@guarded
def exercise(labfile: str = typer.Argument("seed", help="Lab name in labs/ or path to a lab file."),
             seed: Optional[int] = typer.Option(None, "--seed", help="Same seed, same faults."),
             faults: int = typer.Option(2, "--faults", "-k", help="How many faults to inject."),
             old: Optional[str] = typer.Option(None, "--lab", "-l", hidden=True),
             name: Optional[str] = typer.Option(None, "--name", help="Run the lab under another name."),
             set_: Optional[List[str]] = set_opt(), lang: str = lang_opt()):
    """Bring up the finished lab with K random faults from the catalogue; find and fix them."""
    from ..lab.preflight import require_root
    from ..lab.signals import interruptible
    from ..model.labfile import load_lab
    from ..teach.exercise import start_exercise
    require_root()
    check_name(name)
    model = load_lab(old or labfile, rename=name, params=params_of(set_))      # --lab: its older spelling
    with interruptible() as check, err.status("building…"):
        ex = start_exercise(model, faults, seed, check)
    from ..texts import say
    lang = lang_of(lang)
    opt = f" --lab {ex.state.lab}"
    pairs = ", ".join(say("exercise.probe", lang, src=p["src"], dst=p["dst"],
                          kind=f"TCP {p['tcp']}" if p.get("tcp") else f"UDP {p['udp']}" if p.get("udp") else "ping")
                      for p in ex.probes)
    first = ex.probes[0]
    out.print(say("exercise.started", lang, seed=ex.seed, lab=ex.state.lab, n=len(ex.faults), probes=pairs) + "\n"
              + say("exercise.tools", lang, opt=opt, src=first["src"], dst=first["dst"]), highlight=False, markup=False)


@guarded
def check(lab: Optional[str] = lab_opt(), lang: str = lang_opt(), as_json: bool = json_opt(),
          all_: bool = typer.Option(False, "--all", help="Every pair of the lab file's checks, as a matrix.")):
    """Pass/fail for graders: exit 0 only when the lab's default probe gets through (--all: every pair)."""
    from ..lab.preflight import require_root
    require_root()
    lang = lang_of(lang)
    if all_:
        from ..opener import open_network
        from ..teach.checks import check_all
        with open_network(lab=lab) as net:
            m = check_all(net, lang)
        emit(m, as_json, lang)
        finish(m.passed)
    from ..teach.exercise import grade
    g = grade(lab, lang)
    emit(g, as_json, lang)
    finish(g.passed)


@guarded
def report(lesson: Optional[str] = typer.Option(None, "--lesson", help="Report on this lesson's progress."),
           name: Optional[str] = typer.Option(None, "--name", help="With --lesson: the name its lab ran under "
                                                                    "(as given to lesson --name)."),
           old: Optional[str] = typer.Option(None, "--lab", "-l", hidden=True),
           html_file: Optional[str] = typer.Option(None, "--html", help="Write an HTML report here."),
           md_file: Optional[str] = typer.Option(None, "--md", help="Write a Markdown report here.")):
    """A self-contained record of a lesson or exercise: stages, verdicts, time, a picture."""
    from ..errors import UsageError
    from ..output.report import html, markdown, write
    from ..teach.progress import load_record
    if lesson:
        from ..teach.lessons import load_lesson
        rec = load_record("lesson", lesson, name or old or load_lesson(lesson).lab)
    else:
        rec = load_record("exercise")
    if rec is None:
        raise UsageError("nothing to report yet: run 'wgtrace exercise' or 'wgtrace lesson' first.")
    if html_file:
        write(html_file, html(rec))
    if md_file:
        write(md_file, markdown(rec))
    if not html_file and not md_file:
        print(markdown(rec))
