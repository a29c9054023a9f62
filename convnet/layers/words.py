"""The words that the explanations of every kind share, in English and Korean."""

from __future__ import annotations

SHARED = {
    "en": {
        "weights": "weights {formula} = {n}",
        "no_weights": "no weights",
        "floored": " (floored, as PyTorch does: {dropped} of the {padded} input {verb} "
                   "never under the {noun})",
        "rows": "the last row", "rows_many": "the last {n} rows",
        "columns": "the last column", "columns_many": "the last {n} columns",
        "and": " and ", "is": "is", "are": "are",
        "filter": "filter", "window": "window", "padded": "padded {shape}",
    },
    "ko": {
        "weights": "가중치 {formula} = {n}",
        "no_weights": "가중치 없음",
        "floored": " (PyTorch처럼 버림: {padded} 입력에서 {dropped}은 {noun}에 닿지 않음)",
        "rows": "마지막 1행", "rows_many": "마지막 {n}행",
        "columns": "마지막 1열", "columns_many": "마지막 {n}열",
        "and": "과 ", "is": "", "are": "",
        "filter": "필터", "window": "창", "padded": "패딩한 {shape}",
    },
}


def weights(lang: str, formula: str, n: int) -> str:
    return SHARED[lang]["weights"].format(formula=formula, n=f"{n:,}")


def no_weights(lang: str) -> str:
    return SHARED[lang]["no_weights"]
