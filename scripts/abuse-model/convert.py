"""Converts alt-profanity-check's model (a scikit-learn TfidfVectorizer and a CalibratedClassifierCV
of linear SVMs, pickled with joblib) to the plain-text file earshot's abuse classifier reads
(src/engines/speech/abuse.rs), and scores sentences with the package itself for the test that
checks the Rust classifier against it.

    convert.py PACKAGE_DIR OUT_MODEL [SENTENCES OUT_SCORES]

OUT_SCORES: one line per sentence, the package's probability, a tab, the sentence.

The model file, UTF-8, tab-separated:
    earshot-abuse 1
    pattern <token regex>            (words are matched in the lower-cased sentence)
    fold <intercept> <a> <b>          (one per calibrated fold: p = 1 / (1 + exp(a·f + b)),
                                       f = w·x + intercept; the probability is the folds' mean)
    word <word> <idf> <w_1> … <w_k>   (one per vocabulary entry, in column order)
x is the sentence's term counts × idf, scaled to unit length. Floats are written with repr, so
the file is the same wherever it is made.
"""

import sys

sys.path.insert(0, sys.argv[1])
from profanity_check import profanity_check  # noqa: E402  (the package loads its model)

vectorizer = profanity_check.vectorizer
model = profanity_check.model
params = vectorizer.get_params()
expected = {
    "analyzer": "word",
    "binary": False,
    "lowercase": True,
    "ngram_range": (1, 1),
    "norm": "l2",
    "preprocessor": None,
    "strip_accents": None,
    "sublinear_tf": False,
    "token_pattern": r"(?u)\b\w\w+\b",
    "tokenizer": None,
    "use_idf": True,
}
for key, value in expected.items():
    if params[key] != value:
        sys.exit(f"vectorizer {key} is {params[key]!r}, the converter knows {value!r}")
if model.method != "sigmoid" or list(model.classes_) != [0, 1]:
    sys.exit("only a sigmoid-calibrated binary classifier is converted")

folds = model.calibrated_classifiers_
columns = sorted(vectorizer.vocabulary_.items(), key=lambda item: item[1])
if [c for _, c in columns] != list(range(len(columns))):
    sys.exit("vocabulary columns are not 0..n")
with open(sys.argv[2], "w", encoding="utf-8", newline="\n") as out:
    out.write("earshot-abuse 1\n")
    out.write("pattern\t\\b\\w\\w+\\b\n")
    for fold in folds:
        (calibrator,) = fold.calibrators
        intercept = float(fold.estimator.intercept_[0])
        out.write(f"fold\t{intercept!r}\t{float(calibrator.a_)!r}\t{float(calibrator.b_)!r}\n")
    for word, column in columns:
        if "\t" in word or "\n" in word:
            sys.exit(f"word {word!r} holds a tab or a newline")
        weights = "\t".join(repr(float(f.estimator.coef_[0][column])) for f in folds)
        out.write(f"word\t{word}\t{float(vectorizer.idf_[column])!r}\t{weights}\n")

if len(sys.argv) > 4:
    with open(sys.argv[3], encoding="utf-8") as f:
        # One per line, after the last tab (a label may come first); # starts a comment.
        lines = [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#")]
        sentences = [line.split("\t")[-1] for line in lines]
    scores = profanity_check.predict_prob(sentences)
    with open(sys.argv[4], "w", encoding="utf-8", newline="\n") as out:
        for sentence, score in zip(sentences, scores):
            out.write(f"{float(score)!r}\t{sentence}\n")
