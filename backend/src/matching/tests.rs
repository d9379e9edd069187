//! One test per rule and edge of the matching contract.

use super::{
    Conversion, Credit, Detection, Goal, Id, Keys, Millis, Text, Verdict, attribute, explain,
};

/// The conversion's time; detections are placed relative to it.
const T: Millis = 1_000_000;
const MINUTE: Millis = 60_000;

fn text(s: &str) -> Text {
    Text::from(s)
}

fn id(s: &str) -> Id {
    Id::from(s)
}

fn keys(pairs: &[(&str, &str)]) -> Keys {
    pairs
        .iter()
        .map(|&(name, value)| (text(name), text(value)))
        .collect()
}

/// Persons seen in the same session within a minute before a purchase, no dedup, no consent.
fn goal() -> Goal {
    Goal {
        detection_labels: vec![text("person"), text("car")],
        conversion_name: text("purchase"),
        key: text("session_token"),
        window: MINUTE,
        min_confidence: 0.5,
        dedup: 0,
        requires_consent: false,
    }
}

fn conversion() -> Conversion {
    Conversion {
        event_id: id("c-1"),
        event_time: T,
        name: text("purchase"),
        keys: keys(&[("device_id", "dev-1"), ("session_token", "s-1")]),
        consent_granted: true,
        is_test: false,
        value: Some(10.0),
    }
}

/// A detection that qualifies for [`goal`] and [`conversion`] unless the test changes it.
fn detection(event_id: &str, event_time: Millis) -> Detection {
    Detection {
        event_id: id(event_id),
        event_time,
        label: text("person"),
        entity_id: id("e-1"),
        confidence: 0.9,
        keys: keys(&[("device_id", "dev-1"), ("session_token", "s-1")]),
        consent_granted: true,
        filtered: false,
        is_test: false,
        model_version: text("v1"),
        category: None,
    }
}

/// Attributions by event id, for readable assertions.
fn credits(
    goal: &Goal,
    conversion: &Conversion,
    detections: &[Detection],
) -> Vec<(String, Credit)> {
    attribute(goal, conversion, detections)
        .into_iter()
        .map(|(index, credit)| (detections[index].event_id.to_string(), credit))
        .collect()
}

/// Explain's verdicts by event id, for readable assertions.
fn verdicts(
    goal: &Goal,
    conversion: &Conversion,
    detections: &[Detection],
) -> Vec<(String, Verdict)> {
    explain(goal, conversion, detections)
        .into_iter()
        .map(|(index, verdict)| (detections[index].event_id.to_string(), verdict))
        .collect()
}

fn owned<V: Copy>(expected: &[(&str, V)]) -> Vec<(String, V)> {
    expected
        .iter()
        .map(|&(id, value)| (id.to_string(), value))
        .collect()
}

/// The verdict of the only detection of a one-detection session.
fn sole_verdict(goal: &Goal, conversion: &Conversion, detection: Detection) -> Verdict {
    let detections = [detection];
    let explained = explain(goal, conversion, &detections);
    assert_eq!(explained.len(), 1, "the detection should be a candidate");
    let credited = attribute(goal, conversion, &detections);
    let credited_verdict = credited.first().map(|&(_, credit)| Verdict::from(credit));
    let verdict = explained[0].1;
    let explained_credit =
        matches!(verdict, Verdict::Direct | Verdict::Assisted).then_some(verdict);
    assert_eq!(
        credited_verdict, explained_credit,
        "explain and attribute disagree"
    );
    verdict
}

// Rule 1: label and filtering.

#[test]
fn a_detection_with_a_goal_label_qualifies_as_direct() {
    assert_eq!(
        credits(&goal(), &conversion(), &[detection("d", T - 1_000)]),
        owned(&[("d", Credit::Direct)])
    );
}

#[test]
fn a_detection_whose_label_is_not_in_the_goal_does_not_qualify() {
    let dog = Detection {
        label: text("dog"),
        ..detection("d", T - 1_000)
    };
    assert_eq!(
        sole_verdict(&goal(), &conversion(), dog),
        Verdict::LabelNotInGoal
    );
}

#[test]
fn labels_are_compared_exactly_not_ignoring_case() {
    let shouting = Detection {
        label: text("Person"),
        ..detection("d", T - 1_000)
    };
    assert_eq!(
        sole_verdict(&goal(), &conversion(), shouting),
        Verdict::LabelNotInGoal
    );
}

#[test]
fn a_filtered_detection_does_not_qualify() {
    let filtered = Detection {
        filtered: true,
        ..detection("d", T - 1_000)
    };
    assert_eq!(
        sole_verdict(&goal(), &conversion(), filtered),
        Verdict::Filtered
    );
}

#[test]
fn filtered_is_reported_before_any_other_failure() {
    let hopeless = Detection {
        filtered: true,
        label: text("dog"),
        keys: keys(&[("device_id", "dev-1"), ("session_token", "other")]),
        event_time: T + 1,
        confidence: 0.0,
        consent_granted: false,
        ..detection("d", T)
    };
    let goal = Goal {
        requires_consent: true,
        ..goal()
    };
    assert_eq!(
        sole_verdict(&goal, &conversion(), hopeless),
        Verdict::Filtered
    );
}

#[test]
fn the_label_is_checked_before_the_key() {
    let dog_elsewhere = Detection {
        label: text("dog"),
        keys: keys(&[("device_id", "dev-1"), ("session_token", "other")]),
        ..detection("d", T - 1_000)
    };
    assert_eq!(
        sole_verdict(&goal(), &conversion(), dog_elsewhere),
        Verdict::LabelNotInGoal
    );
}

// Rule 2: the goal's key.

#[test]
fn a_detection_with_another_value_for_the_goal_key_does_not_qualify() {
    let elsewhere = Detection {
        keys: keys(&[("device_id", "dev-1"), ("session_token", "s-2")]),
        ..detection("d", T - 1_000)
    };
    assert_eq!(
        sole_verdict(&goal(), &conversion(), elsewhere),
        Verdict::DifferentKey
    );
}

#[test]
fn a_detection_without_the_goal_key_does_not_qualify() {
    let keyless = Detection {
        keys: keys(&[("device_id", "dev-1")]),
        ..detection("d", T - 1_000)
    };
    assert_eq!(
        sole_verdict(&goal(), &conversion(), keyless),
        Verdict::DifferentKey
    );
}

#[test]
fn explain_lists_a_detection_sharing_only_another_key_as_different_key() {
    let same_device_other_session = Detection {
        keys: keys(&[("device_id", "dev-1"), ("session_token", "s-9")]),
        ..detection("d", T - 1_000)
    };
    assert_eq!(
        verdicts(&goal(), &conversion(), &[same_device_other_session]),
        owned(&[("d", Verdict::DifferentKey)])
    );
}

#[test]
fn explain_leaves_out_detections_sharing_no_key_with_the_conversion() {
    let unrelated = Detection {
        keys: keys(&[("device_id", "dev-9"), ("session_token", "s-9")]),
        ..detection("unrelated", T - 1_000)
    };
    // Same value under another name is not a shared key.
    let crossed = Detection {
        keys: keys(&[("device_id", "s-1"), ("session_token", "dev-1")]),
        ..detection("crossed", T - 1_000)
    };
    let related = detection("related", T - 2_000);
    assert_eq!(
        verdicts(&goal(), &conversion(), &[unrelated, crossed, related]),
        owned(&[("related", Verdict::Direct)])
    );
}

// Rule 3: the window, inclusive at both ends.

#[test]
fn a_detection_at_exactly_the_window_start_qualifies() {
    let earliest = detection("d", T - MINUTE);
    assert_eq!(
        sole_verdict(&goal(), &conversion(), earliest),
        Verdict::Direct
    );
}

#[test]
fn a_detection_just_before_the_window_start_is_outside_the_window() {
    let too_early = detection("d", T - MINUTE - 1);
    assert_eq!(
        sole_verdict(&goal(), &conversion(), too_early),
        Verdict::OutsideWindow
    );
}

#[test]
fn a_detection_at_exactly_the_conversion_time_qualifies() {
    let simultaneous = detection("d", T);
    assert_eq!(
        sole_verdict(&goal(), &conversion(), simultaneous),
        Verdict::Direct
    );
}

#[test]
fn a_detection_just_after_the_conversion_is_after_conversion_not_outside_window() {
    let late = detection("d", T + 1);
    assert_eq!(
        sole_verdict(&goal(), &conversion(), late),
        Verdict::AfterConversion
    );
    let much_later = detection("d", T + 10 * MINUTE);
    assert_eq!(
        sole_verdict(&goal(), &conversion(), much_later),
        Verdict::AfterConversion
    );
}

#[test]
fn a_window_reaching_before_the_earliest_instant_does_not_overflow() {
    let goal = Goal {
        window: Millis::MAX,
        ..goal()
    };
    let conversion = Conversion {
        event_time: -1,
        ..conversion()
    };
    let ancient = detection("d", Millis::MIN);
    assert_eq!(sole_verdict(&goal, &conversion, ancient), Verdict::Direct);
}

// Rule 4: confidence, inclusive.

#[test]
fn a_detection_at_exactly_the_minimum_confidence_qualifies() {
    let borderline = Detection {
        confidence: 0.5,
        ..detection("d", T - 1_000)
    };
    assert_eq!(
        sole_verdict(&goal(), &conversion(), borderline),
        Verdict::Direct
    );
}

#[test]
fn a_detection_just_below_the_minimum_confidence_is_below_threshold() {
    let unsure = Detection {
        confidence: 0.499_999,
        ..detection("d", T - 1_000)
    };
    assert_eq!(
        sole_verdict(&goal(), &conversion(), unsure),
        Verdict::BelowThreshold
    );
}

#[test]
fn a_detection_with_a_nan_confidence_is_below_threshold() {
    let broken = Detection {
        confidence: f64::NAN,
        ..detection("d", T - 1_000)
    };
    let goal = Goal {
        min_confidence: 0.0,
        ..goal()
    };
    assert_eq!(
        sole_verdict(&goal, &conversion(), broken),
        Verdict::BelowThreshold
    );
}

// Rule 5: consent, only when required, on both sides.

#[test]
fn consent_is_ignored_when_the_goal_does_not_require_it() {
    let conversion = Conversion {
        consent_granted: false,
        ..conversion()
    };
    let unconsented = Detection {
        consent_granted: false,
        ..detection("d", T - 1_000)
    };
    assert_eq!(
        sole_verdict(&goal(), &conversion, unconsented),
        Verdict::Direct
    );
}

#[test]
fn consent_on_both_sides_qualifies_when_the_goal_requires_it() {
    let goal = Goal {
        requires_consent: true,
        ..goal()
    };
    assert_eq!(
        sole_verdict(&goal, &conversion(), detection("d", T - 1_000)),
        Verdict::Direct
    );
}

#[test]
fn a_detection_without_consent_has_no_consent_when_the_goal_requires_it() {
    let goal = Goal {
        requires_consent: true,
        ..goal()
    };
    let unconsented = Detection {
        consent_granted: false,
        ..detection("d", T - 1_000)
    };
    assert_eq!(
        sole_verdict(&goal, &conversion(), unconsented),
        Verdict::NoConsent
    );
}

#[test]
fn a_conversion_without_consent_matches_nothing_when_the_goal_requires_it() {
    let goal = Goal {
        requires_consent: true,
        ..goal()
    };
    let conversion = Conversion {
        consent_granted: false,
        ..conversion()
    };
    assert_eq!(
        sole_verdict(&goal, &conversion, detection("d", T - 1_000)),
        Verdict::NoConsent
    );
}

// Rule 6: dedup.

fn deduping(gap: Millis) -> Goal {
    Goal {
        dedup: gap,
        ..goal()
    }
}

#[test]
fn a_detection_within_the_dedup_gap_of_a_kept_one_is_a_duplicate() {
    let detections = [detection("a", T - 10_000), detection("b", T - 6_000)];
    assert_eq!(
        verdicts(&deduping(5_000), &conversion(), &detections),
        owned(&[("a", Verdict::Direct), ("b", Verdict::Duplicate)])
    );
}

#[test]
fn a_detection_exactly_the_dedup_gap_after_a_kept_one_is_kept() {
    let detections = [detection("a", T - 10_000), detection("b", T - 5_000)];
    assert_eq!(
        verdicts(&deduping(5_000), &conversion(), &detections),
        owned(&[("a", Verdict::Assisted), ("b", Verdict::Direct)])
    );
}

#[test]
fn the_dedup_gap_is_measured_from_the_last_kept_detection_not_the_last_seen() {
    // b is a duplicate of a; c is less than the gap after b but a full gap after a.
    let detections = [
        detection("a", T - 10_000),
        detection("b", T - 7_000),
        detection("c", T - 5_000),
        detection("d", T - 1_000),
    ];
    assert_eq!(
        verdicts(&deduping(5_000), &conversion(), &detections),
        owned(&[
            ("a", Verdict::Assisted),
            ("b", Verdict::Duplicate),
            ("c", Verdict::Direct),
            ("d", Verdict::Duplicate),
        ])
    );
}

#[test]
fn a_dedup_of_zero_keeps_every_detection_even_at_the_same_time() {
    let detections = [
        detection("a", T - 1_000),
        detection("b", T - 1_000),
        detection("c", T - 999),
    ];
    assert_eq!(
        verdicts(&deduping(0), &conversion(), &detections),
        owned(&[
            ("a", Verdict::Assisted),
            ("b", Verdict::Assisted),
            ("c", Verdict::Direct)
        ])
    );
}

#[test]
fn among_same_time_sightings_the_smaller_event_id_is_kept() {
    let detections = [detection("b", T - 1_000), detection("a", T - 1_000)];
    assert_eq!(
        verdicts(&deduping(5_000), &conversion(), &detections),
        owned(&[("b", Verdict::Duplicate), ("a", Verdict::Direct)])
    );
}

#[test]
fn dedup_groups_are_per_label_and_entity() {
    let detections = [
        detection("person-e1", T - 3_000),
        Detection {
            entity_id: id("e-2"),
            ..detection("person-e2", T - 2_000)
        },
        Detection {
            label: text("car"),
            ..detection("car-e1", T - 1_000)
        },
    ];
    assert_eq!(
        verdicts(&deduping(5_000), &conversion(), &detections),
        owned(&[
            ("person-e1", Verdict::Assisted),
            ("person-e2", Verdict::Assisted),
            ("car-e1", Verdict::Direct),
        ])
    );
}

#[test]
fn detections_failing_another_rule_do_not_start_a_dedup_chain() {
    let detections = [
        Detection {
            confidence: 0.1,
            ..detection("unsure", T - 3_000)
        },
        detection("sure", T - 2_000),
    ];
    assert_eq!(
        verdicts(&deduping(5_000), &conversion(), &detections),
        owned(&[
            ("unsure", Verdict::BelowThreshold),
            ("sure", Verdict::Direct)
        ])
    );
}

#[test]
fn a_duplicate_is_reported_only_after_every_other_rule_passes() {
    let detections = [
        detection("kept", T - 2_000),
        Detection {
            consent_granted: false,
            ..detection("unconsented", T - 1_000)
        },
    ];
    let goal = Goal {
        requires_consent: true,
        ..deduping(5_000)
    };
    assert_eq!(
        verdicts(&goal, &conversion(), &detections),
        owned(&[
            ("kept", Verdict::Direct),
            ("unconsented", Verdict::NoConsent)
        ])
    );
}

// Direct and assisted.

#[test]
fn the_latest_qualifying_detection_is_direct_and_the_others_assisted() {
    let detections = [
        detection("early", T - 3_000),
        detection("late", T - 1_000),
        detection("middle", T - 2_000),
    ];
    assert_eq!(
        credits(&goal(), &conversion(), &detections),
        owned(&[
            ("early", Credit::Assisted),
            ("late", Credit::Direct),
            ("middle", Credit::Assisted),
        ])
    );
}

#[test]
fn a_tie_in_time_goes_to_the_higher_confidence() {
    let detections = [
        Detection {
            confidence: 0.7,
            ..detection("a", T - 1_000)
        },
        Detection {
            confidence: 0.8,
            entity_id: id("e-2"),
            ..detection("b", T - 1_000)
        },
    ];
    assert_eq!(
        credits(&goal(), &conversion(), &detections),
        owned(&[("a", Credit::Assisted), ("b", Credit::Direct)])
    );
}

#[test]
fn a_tie_in_time_and_confidence_goes_to_the_byte_wise_smaller_event_id() {
    // Upper case sorts before lower case byte-wise: "B" < "a".
    let detections = [detection("a", T - 1_000), detection("B", T - 1_000)];
    assert_eq!(
        credits(&goal(), &conversion(), &detections),
        owned(&[("a", Credit::Assisted), ("B", Credit::Direct)])
    );
}

#[test]
fn negative_and_positive_zero_confidences_tie_like_rule_four_compares_them() {
    let goal = Goal {
        min_confidence: 0.0,
        ..goal()
    };
    let detections = [
        Detection {
            confidence: 0.0,
            ..detection("b", T - 1_000)
        },
        Detection {
            confidence: -0.0,
            ..detection("a", T - 1_000)
        },
    ];
    assert_eq!(
        credits(&goal, &conversion(), &detections),
        owned(&[("b", Credit::Assisted), ("a", Credit::Direct)])
    );
}

// Which conversions match at all.

#[test]
fn a_conversion_with_another_name_gets_no_attributions_and_no_explanation() {
    let signup = Conversion {
        name: text("signup"),
        ..conversion()
    };
    let detections = [detection("d", T - 1_000)];
    assert!(attribute(&goal(), &signup, &detections).is_empty());
    assert!(explain(&goal(), &signup, &detections).is_empty());
}

#[test]
fn a_conversion_without_the_goal_key_gets_no_attributions() {
    let device_only = Conversion {
        keys: keys(&[("device_id", "dev-1")]),
        ..conversion()
    };
    let detections = [detection("d", T - 1_000)];
    assert!(attribute(&goal(), &device_only, &detections).is_empty());
    assert_eq!(
        verdicts(&goal(), &device_only, &detections),
        owned(&[("d", Verdict::DifferentKey)])
    );
}

#[test]
fn an_unmatched_conversion_returns_no_attributions() {
    let detections = [
        detection("too-early", T - 2 * MINUTE),
        Detection {
            label: text("dog"),
            ..detection("dog", T - 1_000)
        },
    ];
    assert!(attribute(&goal(), &conversion(), &detections).is_empty());
}

#[test]
fn a_session_without_detections_returns_nothing() {
    assert!(attribute(&goal(), &conversion(), &[]).is_empty());
    assert!(explain(&goal(), &conversion(), &[]).is_empty());
}

// Test traffic.

#[test]
fn a_test_detection_never_matches_a_live_conversion() {
    let test_detection = Detection {
        is_test: true,
        ..detection("d", T - 1_000)
    };
    assert!(attribute(&goal(), &conversion(), &[test_detection]).is_empty());
}

#[test]
fn a_live_detection_never_matches_a_test_conversion() {
    let test_conversion = Conversion {
        is_test: true,
        ..conversion()
    };
    assert!(attribute(&goal(), &test_conversion, &[detection("d", T - 1_000)]).is_empty());
}

#[test]
fn a_test_conversion_matches_test_detections() {
    let test_conversion = Conversion {
        is_test: true,
        ..conversion()
    };
    let detections = [
        detection("live", T - 1_000),
        Detection {
            is_test: true,
            ..detection("test", T - 2_000)
        },
    ];
    assert_eq!(
        credits(&goal(), &test_conversion, &detections),
        owned(&[("test", Credit::Direct)])
    );
}

#[test]
fn explain_leaves_out_detections_of_the_other_test_ness() {
    let detections = [
        Detection {
            is_test: true,
            ..detection("test", T - 1_000)
        },
        detection("live", T - 2_000),
    ];
    assert_eq!(
        verdicts(&goal(), &conversion(), &detections),
        owned(&[("live", Verdict::Direct)])
    );
}

// The whole.

#[test]
fn explain_reports_every_candidate_in_index_order_with_attribute_s_credits() {
    let detections = [
        detection("kept", T - 10_000),
        detection("duplicate", T - 9_000),
        Detection {
            label: text("dog"),
            ..detection("dog", T - 8_000)
        },
        detection("late", T + 1),
        detection("latest", T - 1_000),
    ];
    let goal = deduping(5_000);
    assert_eq!(
        verdicts(&goal, &conversion(), &detections),
        owned(&[
            ("kept", Verdict::Assisted),
            ("duplicate", Verdict::Duplicate),
            ("dog", Verdict::LabelNotInGoal),
            ("late", Verdict::AfterConversion),
            ("latest", Verdict::Direct),
        ])
    );
    assert_eq!(
        attribute(&goal, &conversion(), &detections),
        vec![(0, Credit::Assisted), (4, Credit::Direct)]
    );
}

#[test]
fn the_result_does_not_depend_on_the_order_of_the_detections() {
    let forward = [
        detection("a", T - 1_000),
        detection("b", T - 1_000),
        detection("c", T - 3_000),
    ];
    let mut backward = forward.clone();
    backward.reverse();
    let goal = deduping(5_000);
    let mut forward_credits = credits(&goal, &conversion(), &forward);
    let mut backward_credits = credits(&goal, &conversion(), &backward);
    forward_credits.sort();
    backward_credits.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(forward_credits, backward_credits);
}

#[test]
fn verdicts_and_credits_have_their_api_names() {
    let names: Vec<&str> = [
        Verdict::Direct,
        Verdict::Assisted,
        Verdict::LabelNotInGoal,
        Verdict::DifferentKey,
        Verdict::AfterConversion,
        Verdict::OutsideWindow,
        Verdict::BelowThreshold,
        Verdict::NoConsent,
        Verdict::Duplicate,
        Verdict::Filtered,
    ]
    .into_iter()
    .map(Verdict::as_str)
    .collect();
    assert_eq!(
        names,
        [
            "direct",
            "assisted",
            "label_not_in_goal",
            "different_key",
            "after_conversion",
            "outside_window",
            "below_threshold",
            "no_consent",
            "duplicate",
            "filtered",
        ]
    );
    assert_eq!(Credit::Direct.as_str(), "direct");
    assert_eq!(Credit::Assisted.as_str(), "assisted");
}
