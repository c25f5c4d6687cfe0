"""The escape corpus: every attempt is refused or proves harmless.

The corpus is a data file so that the Rust server tests can send the same snippets
through the HTTP server as webhook code.
"""

import json
import os

from .support import SandboxTestCase, run

CORPUS = os.path.join(os.path.dirname(__file__), "escape_corpus.json")


def load_corpus():
    with open(CORPUS, encoding="utf-8") as corpus:
        return json.load(corpus)


class EscapeCorpusTest(SandboxTestCase):
    def test_corpus_shape(self):
        corpus = load_corpus()
        self.assertGreaterEqual(len(corpus), 40)
        ids = [entry["id"] for entry in corpus]
        self.assertEqual(len(ids), len(set(ids)))
        for entry in corpus:
            self.assertEqual(set(entry), {"id", "code", "expect", "contains"}, entry)
            self.assertIn(entry["expect"], ("refused", "harmless"), entry)
            self.assertTrue(entry["contains"], entry)

    def test_every_attempt(self):
        for entry in load_corpus():
            with self.subTest(entry["id"]):
                answer = run(webhook=entry["code"], payload={"k": "v"})
                if entry["expect"] == "refused":
                    self.assertWebhookFailed(answer, entry["contains"])
                else:
                    self.assertWebhookOk(answer)
                    self.assertIn(entry["contains"], answer[3], answer)
