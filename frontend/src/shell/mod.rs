//! Word expansion as BuildKit's shell lexer does it: quotes, escapes and
//! `$var`/`${var…}` forms, with the set of variables each word used.
