#!/usr/bin/python3
"""check_exports.py NM LIBRARY HEADER - fails unless the shared library exports exactly the
functions the public header declares.

The header's functions are the names afmt_* followed by "(" outside comments; each must
be declared AFMT_API (the macro that gives it default visibility). The exported set is
`NM -D --defined-only LIBRARY`. Every exported symbol must be a declared function (else it
leaked: an internal function or a test hook) and every declared function must be
exported (else it is missing). Problems are listed one a line; the exit status is 1.

check_exports.py --prefix NM STATIC_LIBRARY HEADER - fails unless every global symbol the
static library defines is a function of the header or carries the internal prefix afmt__
(so that no internal name can clash with a program's own, even when linked statically).
"""
import re
import subprocess
import sys


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def declared(header_path):
    text = strip_comments(open(header_path, encoding="utf-8").read())
    # Drop the preprocessor lines: AFMT_API's own definition mentions no function.
    text = re.sub(r"^\s*#.*(?:\\\n.*)*", " ", text, flags=re.M)
    functions = set(re.findall(r"\b(afmt_\w+)\s*\(", text))
    marked = set(re.findall(r"\bAFMT_API\s+[^;{}()]*?\b(afmt_\w+)\s*\(", text))
    return functions, marked


def exported(nm, lib):
    out = subprocess.run([nm, "-D", "--defined-only", lib], check=True, text=True,
                         stdout=subprocess.PIPE).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            names.add(parts[2].split("@")[0])  # "name@@VERSION" if versioned
    return names


def defined_globals(nm, lib):
    out = subprocess.run([nm, "-g", "--defined-only", lib], check=True, text=True,
                         stdout=subprocess.PIPE).stdout
    return {p[2] for p in (l.split() for l in out.splitlines()) if len(p) == 3}


def main_prefix(argv):
    functions, _ = declared(argv[3])
    bad = sorted(n for n in defined_globals(argv[1], argv[2])
                 if n not in functions and not n.startswith("afmt__"))
    if bad:
        sys.stderr.write("%s: %d global symbol(s) neither public nor afmt__:\n" % (argv[2], len(bad)))
        for n in bad:
            sys.stderr.write("  " + n + "\n")
        return 1
    print("%s: every global symbol is public or afmt__" % argv[2])
    return 0


def main(argv):
    if len(argv) == 5 and argv[1] == "--prefix":
        return main_prefix(argv[1:])
    if len(argv) != 4:
        sys.stderr.write("usage: check_exports.py NM libafmt.so include/afmt.h\n")
        return 2
    functions, marked = declared(argv[3])
    if len(functions) < 30:
        sys.stderr.write("check_exports: only %d functions in %s; parser broken?\n"
                         % (len(functions), argv[3]))
        return 2
    symbols = exported(argv[1], argv[2])
    problems = ["declared without AFMT_API: " + n for n in sorted(functions - marked)]
    problems += ["exported but not in afmt.h (leaked): " + n for n in sorted(symbols - functions)]
    problems += ["in afmt.h but not exported (missing): " + n for n in sorted(functions - symbols)]
    if problems:
        sys.stderr.write("%s against %s: %d problem(s)\n" % (argv[2], argv[3], len(problems)))
        for p in problems:
            sys.stderr.write("  " + p + "\n")
        return 1
    print("%s exports exactly the %d functions of %s" % (argv[2], len(functions), argv[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
