//! Unit tests for word expansion: each operator, the matched/unmatched sets,
//! the lexer switches, the backtick escape, error offsets and nesting limits.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|name| name.to_string()).collect()
}

fn word(input: &str, vars: &[(&str, &str)]) -> String {
    match Lexer::new('\\').process_word(input, &env(vars)) {
        Ok(expansion) => expansion.value,
        Err(error) => panic!("{input:?} failed: {error}"),
    }
}

fn word_error(input: &str, vars: &[(&str, &str)]) -> ShellError {
    match Lexer::new('\\').process_word(input, &env(vars)) {
        Ok(expansion) => panic!("{input:?} should fail, gave {:?}", expansion.value),
        Err(error) => error,
    }
}

fn words(input: &str, vars: &[(&str, &str)]) -> Vec<String> {
    match Lexer::new('\\').process_words(input, &env(vars)) {
        Ok(expansion) => expansion.words,
        Err(error) => panic!("{input:?} failed: {error}"),
    }
}

#[test]
fn plain_references() {
    let vars = [("NAME", "value"), ("EMPTY", "")];
    assert_eq!(word("$NAME", &vars), "value");
    assert_eq!(word("${NAME}", &vars), "value");
    assert_eq!(word("a${NAME}b", &vars), "avalueb");
    assert_eq!(word("$NAME.txt", &vars), "value.txt");
    assert_eq!(word("$MISSING-x", &vars), "-x");
    assert_eq!(word("${EMPTY}x", &vars), "x");
    assert_eq!(word("cost: $", &vars), "cost: $");
    assert_eq!(word("$.x", &vars), "$.x");
    assert_eq!(word("$1x", &vars), "x");
    assert_eq!(word("$@@", &vars), "@");
}

#[test]
fn default_and_alternative_operators() {
    let vars = [("SET", "v"), ("EMPTY", "")];
    assert_eq!(word("${SET:-d}|${EMPTY:-d}|${UNSET:-d}", &vars), "v|d|d");
    assert_eq!(word("${SET-d}|${EMPTY-d}|${UNSET-d}", &vars), "v||d");
    assert_eq!(word("${SET:+a}|${EMPTY:+a}|${UNSET:+a}", &vars), "a||");
    assert_eq!(word("${SET+a}|${EMPTY+a}|${UNSET+a}", &vars), "a|a|");
    assert_eq!(word("${UNSET:-$SET and ${EMPTY:-more}}", &vars), "v and more");
    assert_eq!(word("${UNSET:-a\\}b}", &vars), "a}b");
}

#[test]
fn required_operator() {
    let vars = [("SET", "v"), ("EMPTY", ""), ("WHO", "me")];
    assert_eq!(word("${SET:?oops}", &vars), "v");
    assert_eq!(word("${EMPTY?oops}", &vars), "");
    assert_eq!(word_error("${EMPTY:?oops}", &vars).message, "EMPTY: oops");
    assert_eq!(word_error("${UNSET?need $WHO}", &vars).message, "UNSET: need me");
    assert_eq!(word_error("${UNSET?}", &vars).message, "UNSET: is not allowed to be unset");
    assert_eq!(word_error("${EMPTY:?}", &vars).message, "EMPTY: is not allowed to be empty");
}

#[test]
fn prefix_and_suffix_removal() {
    let vars = [("PATHLIKE", "/usr/local/bin"), ("FILE", "archive.tar.gz"), ("STARS", "a**b")];
    assert_eq!(word("${PATHLIKE#*/}", &vars), "usr/local/bin");
    assert_eq!(word("${PATHLIKE##*/}", &vars), "bin");
    assert_eq!(word("${FILE%.*}", &vars), "archive.tar");
    assert_eq!(word("${FILE%%.*}", &vars), "archive");
    assert_eq!(word("${FILE#arch?ve}", &vars), ".tar.gz");
    assert_eq!(word("${FILE#nomatch}", &vars), "archive.tar.gz");
    assert_eq!(word("${STARS#a\\*}", &vars), "*b");
    assert_eq!(word("${STARS%\\*b}", &vars), "a*");
    assert_eq!(word("${UNSET#x}", &vars), "");
    assert_eq!(
        word_error("${FILE#\\q}", &vars).message,
        "invalid pattern (\\q) in substitution: invalid escape '\\q'"
    );
    assert_eq!(word_error("${FILE:#x}", &vars).message, "unsupported modifier (:#) in substitution");
    assert_eq!(word_error("${FILE:%x}", &vars).message, "unsupported modifier (:%) in substitution");
}

#[test]
fn replacement_operators() {
    let vars = [("URL", "http://a/b/c"), ("FROM", "http"), ("TO", "https")];
    assert_eq!(word("${URL/$FROM/$TO}", &vars), "https://a/b/c");
    assert_eq!(word("${URL/\\//_}", &vars), "http:_/a/b/c");
    assert_eq!(word("${URL//\\//_}", &vars), "http:__a_b_c");
    assert_eq!(word("${URL//?/.}", &vars), "............");
    assert_eq!(word("${URL/a*/z}", &vars), "http://z");
    assert_eq!(word("${UNSET/a/b}", &vars), "");
    assert_eq!(word_error("${URL/a}", &vars).message, "syntax error: missing '/' in ${}");
    assert_eq!(word_error("${URL/a/b", &vars).message, "syntax error: missing '}'");
}

#[test]
fn quotes_and_escapes() {
    let vars = [("V", "x y")];
    assert_eq!(word("'$V'", &vars), "$V");
    assert_eq!(word("\"$V\"", &vars), "x y");
    assert_eq!(word("\"a\\tb\"", &vars), "a\\tb");
    assert_eq!(word("\"a\\\"b\\$V\\\\\"", &vars), "a\"b$V\\");
    assert_eq!(word("a\\tb", &vars), "atb");
    assert_eq!(word("\\$V", &vars), "$V");
    assert_eq!(word("trailing\\", &vars), "trailing");
    assert_eq!(word("'it''s'", &vars), "its");
}

#[test]
fn backtick_escape() {
    let lexer = Lexer::new('`');
    let vars = env(&[("V", "x")]);
    let expand = |input: &str| lexer.process_word(input, &vars).map(|expansion| expansion.value);
    assert_eq!(expand("`$V").unwrap(), "$V");
    assert_eq!(expand("C:\\dir\\$V").unwrap(), "C:\\dir\\x");
    assert_eq!(expand("\"a`\"b\"").unwrap(), "a\"b");
    assert_eq!(expand("\"a\\\"").unwrap(), "a\\");
    assert_eq!(expand("a` b").unwrap(), "a b");
    assert_eq!(expand("${UNSET:-`}}").unwrap(), "}");
    assert_eq!(lexer.process_words("a` b c", &vars).unwrap().words, ["a b", "c"]);
}

#[test]
fn matched_and_unmatched_sets() {
    let vars = env(&[("FOO", "x"), ("BAR", ""), ("NEEDLE", "x")]);
    let lexer = Lexer::new('\\');
    let expansion = lexer.process_word("${FOO-a} ${BAR:-b} ${BAZ+c} $QUX ${FOO}", &vars).unwrap();
    assert_eq!(expansion.value, "x b   x");
    assert_eq!(expansion.matched, names(&["BAR", "FOO"]));
    assert_eq!(expansion.unmatched, names(&["BAZ", "QUX"]));

    let expansion = lexer.process_word("${FOO/$NEEDLE/y}${NONE:-$ALSO_NONE}", &vars).unwrap();
    assert_eq!(expansion.value, "y");
    assert_eq!(expansion.matched, names(&["FOO", "NEEDLE"]));
    assert_eq!(expansion.unmatched, names(&["ALSO_NONE", "NONE"]));

    let expansion = lexer.process_word("'$FOO' \\$BAR plain", &vars).unwrap();
    assert!(expansion.matched.is_empty() && expansion.unmatched.is_empty());

    let expansion = lexer.process_words("$FOO ${MISSING:-d}", &vars).unwrap();
    assert_eq!(expansion.matched, names(&["FOO"]));
    assert_eq!(expansion.unmatched, names(&["MISSING"]));
}

#[test]
fn every_env_kind_works() {
    let pairs = env(&[("A", "first"), ("A", "second")]);
    let lexer = Lexer::new('\\');
    assert_eq!(lexer.process_word("$A", &pairs).unwrap().value, "second");
    assert_eq!(lexer.process_word("$A", &pairs.as_slice()).unwrap().value, "second");
    let tree: BTreeMap<String, String> = pairs.iter().cloned().collect();
    assert_eq!(lexer.process_word("$A", &tree).unwrap().value, "second");
    let hash: HashMap<String, String> = pairs.iter().cloned().collect();
    assert_eq!(lexer.process_word("$A", &hash).unwrap().value, "second");
}

#[test]
fn word_splitting() {
    let vars = [("SPACED", "  a  b "), ("ONE", "x")];
    assert_eq!(words("a b\tc", &vars), ["a", "b", "c"]);
    assert_eq!(words("pre$SPACED", &vars), ["pre", "a", "b"]);
    assert_eq!(words("\"pre$SPACED\"", &vars), ["pre  a  b "]);
    assert_eq!(words("a\\ b '' \"\" c", &vars), ["a b", "c"]);
    assert_eq!(words("cat <<  EOF >out", &vars), ["cat", "<<  EOF", ">out"]);
    let expansion = Lexer::new('\\').process_words("  one   two ", &env(&vars)).unwrap();
    assert_eq!(expansion.value, "one two");
}

#[test]
fn word_splitting_drops_text_before_a_nested_form_like_buildkit() {
    // BuildKit shares one word buffer between nesting levels, so the `pre`
    // gathered before `${…:-…}` is lost from the words (but not the value).
    let vars = [("ONE", "x")];
    assert_eq!(words("pre${UNSET:-mid}post", &vars), ["midpost"]);
    assert_eq!(words("a b${UNSET:-c}", &vars), ["a", "c"]);
    assert_eq!(words("pre${ONE}post", &vars), ["prexpost"]);
    assert_eq!(word("pre${UNSET:-mid}post", &vars), "premidpost");
}

#[test]
fn raw_quotes_and_escapes() {
    let vars = env(&[("V", "x")]);
    let mut lexer = Lexer::new('\\');
    lexer.raw_quotes = true;
    assert_eq!(lexer.process_word("'a$V'\"b$V\"", &vars).unwrap().value, "'a$V'\"bx\"");
    lexer.raw_quotes = false;
    lexer.raw_escapes = true;
    assert_eq!(lexer.process_word("a\\$V", &vars).unwrap().value, "a\\$V");
    assert_eq!(lexer.process_word("\"a\\$V\"", &vars).unwrap().value, "a\\$V");
    // BuildKit writes the backslash twice when it escapes nothing.
    assert_eq!(lexer.process_word("\"a\\tb\"", &vars).unwrap().value, "a\\\\tb");
    // Word parts of `:-` drop escapes even in this mode.
    assert_eq!(lexer.process_word("${U:-a\\b}", &vars).unwrap().value, "ab");
}

#[test]
fn skip_flags() {
    let vars = env(&[("SET", "v")]);
    let mut lexer = Lexer::new('\\');
    lexer.skip_unset_env = true;
    let expand = |lexer: &Lexer, input: &str| lexer.process_word(input, &vars).unwrap().value;
    assert_eq!(
        expand(&lexer, "$SET $U ${U} ${U:-$SET} ${U#a} ${U//a/b}"),
        "v $U ${U} ${U:-v} ${U#a} ${U/a/b}"
    );
    assert_eq!(expand(&lexer, "${U:=x}"), "${U:=x}");
    lexer.skip_unset_env = false;
    lexer.skip_process_quotes = true;
    assert_eq!(expand(&lexer, "'$SET' \"\\$SET\""), "'v' \"$SET\"");
}

#[test]
fn syntax_errors() {
    let cases = [
        ("${}", "syntax error: bad substitution"),
        ("${:-a}", "syntax error: bad substitution"),
        ("${{a}", "syntax error: bad substitution"),
        ("${", "syntax error: missing '}'"),
        ("${a", "syntax error: missing '}'"),
        ("${a:-b", "syntax error: missing '}'"),
        ("${a:-\"b}", "syntax error: missing '}'"),
        ("${a:}", "syntax error: missing '}'"),
        ("${a.}", "unsupported modifier (.) in substitution"),
        ("${a:=b}", "unsupported modifier (:=) in substitution"),
        ("${a=b}", "unsupported modifier (=) in substitution"),
        ("'abc", "unexpected end of statement while looking for matching single-quote"),
        ("\"abc", "unexpected end of statement while looking for matching double-quote"),
        ("\"abc\\\"", "unexpected end of statement while looking for matching double-quote"),
    ];
    for (input, message) in cases {
        assert_eq!(word_error(input, &[]).message, message, "input {input:?}");
    }
}

#[test]
fn error_offsets_point_at_the_culprit() {
    assert_eq!(word_error("ab'cd", &[]).offset, 2);
    assert_eq!(word_error("a \"b", &[]).offset, 2);
    assert_eq!(word_error("x ${}", &[]).offset, 2);
    assert_eq!(word_error("x${y", &[]).offset, 1);
    assert_eq!(word_error("${a:-${}}", &[]).offset, 5);
    assert_eq!(word_error("ab${c=d}", &[]).offset, 5);
    assert_eq!(word_error("ab${c:=d}", &[]).offset, 5);
    assert_eq!(word_error("é${x?}", &[]).offset, 1);
    // Counted in characters, not bytes.
    assert_eq!(word_error("한국'x", &[]).offset, 2);
}

#[test]
fn describe_formats_like_buildkit() {
    let error = word_error("a\"${x", &[]);
    assert_eq!(error.to_string(), "syntax error: missing '}'");
    assert_eq!(error.describe("a\"${x"), "failed to process \"a\\\"${x\": syntax error: missing '}'");
}

#[test]
fn leading_byte_order_mark_is_dropped() {
    assert_eq!(word("\u{FEFF}abc", &[]), "abc");
    assert_eq!(word("a\u{FEFF}bc", &[]), "a\u{FEFF}bc");
}

#[test]
fn names_use_go_letter_and_digit_classes() {
    let vars = [("한국어", "korean"), ("x", "X")];
    assert_eq!(word("$한국어!", &vars), "korean!");
    // `²` is a number but not a decimal digit, so it does not start a name.
    assert_eq!(word("$²", &vars), "$²");
    // A Devanagari vowel sign is alphabetic but not a letter: it ends the name.
    assert_eq!(word("$x\u{093F}", &vars), "X\u{093F}");
    // Arabic-Indic digits are decimal digits: a positional parameter.
    assert_eq!(word("$\u{0661}\u{0662}a", &vars), "a");
}

/// `${V0:-${V1:-…end…}}` nested `depth` levels deep, with `"…"` inside each
/// level when `quoted`.
fn nested(depth: usize, quoted: bool) -> String {
    let (open, close) = if quoted { ("\"", "\"}") } else { ("", "}") };
    let mut text = String::new();
    for level in 0..depth {
        text.push_str(&format!("${{V{level}:-{open}"));
    }
    text.push_str("end");
    text.push_str(&close.repeat(depth));
    text
}

#[test]
fn deep_nesting_has_no_limit_and_stays_off_the_stack() {
    // BuildKit recurses without a depth limit; we keep open forms on a heap
    // stack, so even a tiny thread stack copes with 100,000 levels.
    let worker = std::thread::Builder::new().stack_size(64 * 1024).spawn(|| {
        let vars: Vec<(String, String)> = vec![("V5".to_string(), "five".to_string())];
        let lexer = Lexer::new('\\');
        let plain = lexer.process_word(&nested(100_000, false), &vars).map(|expansion| expansion.value);
        let quoted = lexer.process_word(&nested(10_000, true), &vars).map(|expansion| expansion.value);
        let words = lexer.process_words(&nested(10_000, false), &vars).map(|expansion| expansion.words);
        (plain, quoted, words)
    });
    let (plain, quoted, words) = worker.expect("spawn").join().expect("no stack overflow");
    assert_eq!(plain.unwrap(), "five");
    assert_eq!(quoted.unwrap(), "five");
    assert_eq!(words.unwrap(), ["five"]);
}

#[test]
fn deep_nesting_is_linear() {
    // Exponential or quadratic work would take far longer than this allows
    // for 200,000 levels; linear work takes milliseconds.
    let started = std::time::Instant::now();
    let vars: Vec<(String, String)> = Vec::new();
    let expansion = Lexer::new('\\').process_word(&nested(200_000, false), &vars).unwrap();
    assert_eq!(expansion.value, "end");
    assert_eq!(expansion.unmatched.len(), 200_000);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
}

#[test]
fn errors_deep_inside_nesting_point_at_the_outermost_unclosed_form() {
    let vars: Vec<(String, String)> = Vec::new();
    let lexer = Lexer::new('\\');
    // Unterminated at every level: BuildKit restates the error as the
    // outermost form's missing brace.
    let mut text = nested(5_000, false);
    text.truncate(text.len() - 1);
    let error = lexer.process_word(&format!("ab{text}"), &vars).unwrap_err();
    assert_eq!(error.message, "syntax error: missing '}'");
    assert_eq!(error.offset, 2);
    // A bad form deep inside, with input left after it, is reported as is.
    let inner = "${V:-".repeat(3_000) + "${}" + &"}".repeat(3_000);
    let error = lexer.process_word(&inner, &vars).unwrap_err();
    assert_eq!(error.message, "syntax error: bad substitution");
    assert_eq!(error.offset, 3_000 * "${V:-".len());
}

#[test]
fn substitutions_stop_at_the_size_limit() {
    // Fuzz find (fuzz/regressions/word_expansion): an empty pattern puts the
    // replacement between every two characters, so each level of
    // `${PATH///${PATH///…}}` is 29 times longer than the one inside it.
    // Eight levels would be about 14 GB; the fifth already passes the limit.
    let vars = [("PATH", "/usr/local/bin:/usr/bin:/bin")];
    let nest = |levels: usize| (0..levels).fold("x".to_owned(), |inner, _| format!("${{PATH///{inner}}}"));
    let started = std::time::Instant::now();
    let error = word_error(&nest(8), &vars);
    assert_eq!(error.message, "expansion too long: substitutions produce more than 16 MiB");
    // The `$` of the fifth level from the inside, after three `${PATH///`.
    assert_eq!(error.offset, 3 * "${PATH///".len());
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    // Four levels, about 1.4 MB, are fine.
    assert_eq!(word(&nest(4), &vars).len(), 28 + 29 * (28 + 29 * (28 + 29 * (28 + 29))));

    // `$0` repeats a long match as often as the template says.
    let long = "v".repeat(1 << 20);
    let error = word_error(&format!("${{LONG//*/'{}'}}", "$0".repeat(100)), &[("LONG", long.as_str())]);
    assert_eq!(error.message, "expansion too long: substitutions produce more than 16 MiB");
    assert_eq!(
        word(&format!("${{LONG//*/'{}'}}", "$0".repeat(15)), &[("LONG", long.as_str())]).len(),
        15 << 20
    );

    // Every copy of a value counts, across the whole word or line.
    let refs = |count: usize| "$LONG ".repeat(count);
    assert_eq!(words(&refs(15), &[("LONG", long.as_str())]).len(), 15);
    assert_eq!(word_error(&refs(17), &[("LONG", long.as_str())]).offset, 16 * "$LONG ".len());

    // So do the forms `skip_unset_env` keeps, which copy their word part.
    let lexer = Lexer { skip_unset_env: true, ..Lexer::new('\\') };
    let kept = (0..20).fold("$LONG".to_owned(), |inner, _| format!("${{UNSET:-{inner}}}"));
    let error = lexer.process_word(&kept, &env(&[("LONG", long.as_str())])).unwrap_err();
    assert_eq!(error.message, "expansion too long: substitutions produce more than 16 MiB");
}
