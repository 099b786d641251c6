"""The terminal session: ask, follow up, summarise, list and reindex, over one loaded knowledge base."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from bot.terminal import format_answer, format_hits, reindex_with_progress
from index.answering.conversations import HISTORY_TURNS
from index.knowledge import KnowledgeBase
from index.text import clean_question, has_words, undecodable
from index.types import Turn

CHAT_HELP = """Type a question to get a cited answer; a follow-up is read with the questions before it.
Commands: /summary ARTICLE [short|medium|long]  summarise an article (id or start of its title)
          /articles  list the indexed articles
          /passages QUESTION  show the best matching passages
          /new       start a new conversation (forget earlier questions)
          /reindex   update the index from the corpus folder
          /help      this text
          /quit      leave (or Ctrl-D)"""


def chat_session(knowledge: KnowledgeBase, out: TextIO, err: TextIO, read_line: Callable[[str], str], max_question_chars: int) -> None:
    """Read lines until /quit or end of input, answering each; the knowledge base must be loaded."""
    history: list[Turn] = []
    articles, passages, _ = knowledge.stats()
    print(f"policybot — {articles} article(s), {passages} passages indexed.\n{CHAT_HELP}", file=out)
    while True:
        try:
            line = read_line("\nquestion> ")
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            return
        if undecodable(line):
            print("That line is not valid UTF-8 text; type it again.", file=out)
            continue
        command = line.strip().lower()
        if not command:
            continue
        if command in ("/quit", "/exit", "quit", "exit"):
            return
        if command == "/help":
            print(CHAT_HELP, file=out)
        elif command == "/articles":
            for info in knowledge.articles:
                print(f"- {info.title} ({info.chunks} passages) [{info.article_id}]", file=out)
        elif command == "/reindex":
            reindex_with_progress(knowledge, rebuild=False, quiet=False, out=out, err=err)
        elif command == "/new":
            history.clear()
            print("Started a new conversation.", file=out)
        elif command.startswith("/summary"):
            words = line.split()[1:]
            length = words.pop().lower() if words and words[-1].lower() in ("short", "medium", "long") else "medium"
            try:
                print(format_answer(knowledge.summarize(" ".join(words), length)), file=out)
            except LookupError as exc:
                print(_summary_error(knowledge, words, exc), file=out)
        elif command.startswith("/passages"):
            try:
                question = clean_question(line.split(None, 1)[1] if " " in line.strip() else "", max_question_chars)
            except ValueError as exc:
                print(exc, file=out)
                continue
            print(format_hits(knowledge.search(question, 3)), file=out)
        elif command.startswith("/"):
            print(f"Unknown command {command.split()[0]}. Type /help for the commands.", file=out)
        else:
            try:
                question = clean_question(line, max_question_chars)
            except ValueError as exc:
                print(exc, file=out)
                continue
            answer = knowledge.ask(question, history)
            if not answer.abstained or has_words(question):
                history = [*history, Turn(question, answer.text)][-HISTORY_TURNS:]
            print(format_answer(answer), file=out)


def _summary_error(knowledge: KnowledgeBase, words: list[str], error: LookupError) -> str:
    """Why /summary failed: a mistyped length reads better as such than as part of the article's name."""
    if len(words) > 1:
        try:
            knowledge.find_article(" ".join(words[:-1]))
        except LookupError:
            pass
        else:
            return f"unknown length {words[-1]!r}: use short, medium or long"
    return str(error)
