//! Go-compatible parsing: bools, integers, floats, durations, quantities, and their formatting.

use super::*;

#[test]
fn go_bools() {
    for t in ["1", "t", "T", "TRUE", "true", "True"] {
        assert_eq!(go_bool(t), Some(true), "{t}");
    }
    for f in ["0", "f", "F", "FALSE", "false", "False"] {
        assert_eq!(go_bool(f), Some(false), "{f}");
    }
    for bad in ["yes", "on", " true", "tRUE", ""] {
        assert_eq!(go_bool(bad), None, "{bad}");
    }
}

#[test]
fn go_integers() {
    assert_eq!(go_i32("+42"), Some(42));
    assert_eq!(go_i32("-1"), Some(-1));
    assert_eq!(go_i32("70000"), Some(70000));
    assert_eq!(go_i32("2147483648"), None);
    assert_eq!(go_i32("1_000"), None);
    assert_eq!(go_u64("+1"), None);
    assert_eq!(go_u64("-1"), None);
    assert_eq!(go_u64("18446744073709551615"), Some(u64::MAX));
}

#[test]
fn go_floats_refuse_nan() {
    assert_eq!(go_f64("0.5"), Some(0.5));
    assert_eq!(go_f64(".5"), Some(0.5));
    assert_eq!(go_f64("1e-1"), Some(0.1));
    assert_eq!(go_f64("NaN"), None);
    assert_eq!(go_f64("x"), None);
}

#[test]
fn durations_parse_like_go() {
    let ms = |s: &str| go_duration(s).map(|d| d.0 / 1_000_000);
    assert_eq!(ms("1m30s"), Some(90_000));
    assert_eq!(ms("1.5h"), Some(5_400_000));
    assert_eq!(ms("300ms"), Some(300));
    assert_eq!(ms("-2s"), Some(-2000));
    assert_eq!(ms(".5s"), Some(500));
    assert_eq!(ms("1.s"), Some(1000));
    assert_eq!(go_duration("0"), Some(Duration(0)));
    assert_eq!(go_duration("-0"), Some(Duration(0)));
    assert_eq!(go_duration("500\u{b5}s"), Some(Duration(500_000)));
    assert_eq!(go_duration("500\u{3bc}s"), Some(Duration(500_000)));
    for bad in ["", "1", "1d", "1 s", "s", ".s", "1m 30s", "9999999999h"] {
        assert_eq!(go_duration(bad), None, "{bad}");
    }
}

#[test]
fn durations_render_like_linkerd() {
    let d = |s: &str| go_duration(s).unwrap();
    assert_eq!(d("1s").millis_text(), "1000ms");
    assert_eq!(d("1.5ms").millis_text(), "1ms");
    assert_eq!(d("500us").millis_text(), "0ms");
    assert_eq!(d("1.001s").millis_text(), "1000ms");
    assert_eq!(d("-1s").millis_text(), "-1000ms");
    assert_eq!(d("1m30s").seconds_text(), "90s");
    assert_eq!(d("500ms").seconds_text(), "0s");
}

#[test]
fn durations_print_like_go() {
    let d = |s: &str| go_duration(s).unwrap().to_string();
    assert_eq!(d("0"), "0s");
    assert_eq!(d("1.5ms"), "1.5ms");
    assert_eq!(d("500us"), "500\u{b5}s");
    assert_eq!(d("60s"), "1m0s");
    assert_eq!(d("1h"), "1h0m0s");
    assert_eq!(d("90m"), "1h30m0s");
    assert_eq!(d("150.5s"), "2m30.5s");
    assert_eq!(d("45s"), "45s");
    assert_eq!(d("-45s"), "-45s");
    assert_eq!(d("3ns"), "3ns");
}

#[test]
fn floats_print_like_go() {
    assert_eq!(go_float(0.1), "0.1");
    assert_eq!(go_float(0.25), "0.25");
    assert_eq!(go_float(0.00005), "5e-05");
    assert_eq!(go_float(2.75), "2.75");
    assert_eq!(go_float(1_500_000.0), "1.5e+06");
    assert_eq!(go_float(123456.0), "123456");
}

#[test]
fn snake_casing() {
    for (i, o) in [
        ("keepAliveInterval", "keep_alive_interval"),
        ("appleSauce", "apple_sauce"),
        ("blueBerry", "blue_berry"),
        ("applesauce", "applesauce"),
        ("http2", "http2"),
        ("server", "server"),
        ("HTTPServer", "http_server"),
        ("fooBAR", "foo_bar"),
        ("some-thing", "some_thing"),
    ] {
        assert_eq!(snake_case(i), o, "{i}");
    }
}

#[test]
fn quantities_round_up() {
    let c = |s: &str| quantity(s).and_then(|q| q.ceil());
    assert_eq!(c("100m"), Some(1));
    assert_eq!(c("0.5"), Some(1));
    assert_eq!(c("1500m"), Some(2));
    assert_eq!(c("3"), Some(3));
    assert_eq!(c("0"), Some(0));
    assert_eq!(c("1k"), Some(1000));
    assert_eq!(c("1e3"), Some(1000));
    assert_eq!(c("-1500m"), Some(-2));
}

#[test]
fn quantities_validate() {
    for ok in [
        "1", "0.5", ".5", "5.", "100m", "64Mi", "1e3", "1E-3", "+1", "-1", "1.5Gi", "2k",
    ] {
        assert!(quantity(ok).is_some(), "{ok}");
    }
    for bad in ["", "m", "1.2.3", "1Kb", "abc", "1 m", "1e", "1ki", "--1"] {
        assert!(quantity(bad).is_none(), "{bad}");
    }
}

#[test]
fn quantities_canonicalise_like_kubernetes() {
    for (i, o) in [
        ("0.5", "500m"),
        ("1000m", "1"),
        ("1.5Gi", "1536Mi"),
        ("2048Mi", "2Gi"),
        ("1.5", "1500m"),
        ("100m", "100m"),
        ("64Mi", "64Mi"),
        ("1500", "1500"),
        ("2000", "2k"),
        ("512Ki", "512Ki"),
        ("0.5Ki", "512"),
        ("0", "0"),
        ("1e3", "1e3"),
        ("0.0000000001", "1n"),
    ] {
        assert_eq!(canonical_quantity(i), o, "{i}");
    }
}
