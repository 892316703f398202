from kgrec.cli import entry

entry()
