//! AWS regions and alarm ARNs: the region and account named in an ARN, the display names older
//! CloudWatch payloads put in `Region` ("EU (Ireland)"), and the ARN of an alarm that came without one.

/// The parts of `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` that say where the resource lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ArnParts<'a> {
    pub(crate) region: &'a str,
    pub(crate) account: &'a str,
}

/// Splits an ARN; `None` when it is not one or names no region or account.
pub(crate) fn arn_parts(arn: &str) -> Option<ArnParts<'_>> {
    // Byte positions of the first five colons; runs for every CloudWatch alert, so no iterator of
    // `split` pieces.
    let mut colons = [0usize; 5];
    let mut found = 0;
    for (i, b) in arn.bytes().enumerate() {
        if b == b':' {
            colons[found] = i;
            found += 1;
            if found == colons.len() {
                break;
            }
        }
    }
    if found < colons.len() || &arn[..colons[0]] != "arn" {
        return None;
    }
    let region = &arn[colons[2] + 1..colons[3]];
    let account = &arn[colons[3] + 1..colons[4]];
    (!region.is_empty() && !account.is_empty()).then_some(ArnParts { region, account })
}

/// The region of any ARN (`arn:aws:sns:eu-west-1:123:topic`), also where it names no account (AWS
/// Health's `arn:aws:health:us-east-1::event/..`); `None` when it names none or is not one.
pub(crate) fn arn_region(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(5, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let region = parts.nth(2)?;
    parts.next()?;
    (!region.is_empty() && looks_like_code(region)).then_some(region)
}

/// The ARN CloudWatch gives the alarm `name` in `region` and `account`, for payloads that omit it.
pub(crate) fn alarm_arn(region: &str, account: &str, name: &str) -> String {
    format!(
        "arn:{}:cloudwatch:{region}:{account}:alarm:{name}",
        partition(region)
    )
}

fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// A region code from what a payload's `Region` field holds: a display name as CloudWatch writes it
/// (both the older "EU (…)" and the newer "Europe (…)" spellings), or already a code.
pub(crate) fn region_code(name: &str) -> Option<&str> {
    let name = name.trim();
    if looks_like_code(name) {
        return Some(name);
    }
    if let Some(code) = known_name(name) {
        return Some(code);
    }
    // Older messages write "EU - Ireland" and "US East - N. Virginia" for "EU (Ireland)" and
    // "US East (N. Virginia)".
    let (area, place) = name.split_once(" - ")?;
    known_name(&format!("{} ({})", area.trim(), place.trim()))
}

/// A display name CloudWatch has written, or a code.
fn known_name(name: &str) -> Option<&'static str> {
    let code = match name {
        "US East (N. Virginia)" | "US East (Northern Virginia)" => "us-east-1",
        "US East (Ohio)" => "us-east-2",
        "US West (N. California)" | "US West (Northern California)" => "us-west-1",
        "US West (Oregon)" => "us-west-2",
        "Africa (Cape Town)" => "af-south-1",
        "Asia Pacific (Hong Kong)" => "ap-east-1",
        "Asia Pacific (Taipei)" => "ap-east-2",
        "Asia Pacific (Tokyo)" => "ap-northeast-1",
        "Asia Pacific (Seoul)" => "ap-northeast-2",
        "Asia Pacific (Osaka)" | "Asia Pacific (Osaka-Local)" => "ap-northeast-3",
        "Asia Pacific (Mumbai)" => "ap-south-1",
        "Asia Pacific (Hyderabad)" => "ap-south-2",
        "Asia Pacific (Singapore)" => "ap-southeast-1",
        "Asia Pacific (Sydney)" => "ap-southeast-2",
        "Asia Pacific (Jakarta)" => "ap-southeast-3",
        "Asia Pacific (Melbourne)" => "ap-southeast-4",
        "Asia Pacific (Malaysia)" => "ap-southeast-5",
        "Asia Pacific (New Zealand)" => "ap-southeast-6",
        "Asia Pacific (Thailand)" => "ap-southeast-7",
        "Canada (Central)" => "ca-central-1",
        "Canada West (Calgary)" => "ca-west-1",
        "EU (Frankfurt)" | "Europe (Frankfurt)" => "eu-central-1",
        "EU (Zurich)" | "Europe (Zurich)" => "eu-central-2",
        "EU (Ireland)" | "Europe (Ireland)" => "eu-west-1",
        "EU (London)" | "Europe (London)" => "eu-west-2",
        "EU (Paris)" | "Europe (Paris)" => "eu-west-3",
        "EU (Milan)" | "Europe (Milan)" => "eu-south-1",
        "EU (Spain)" | "Europe (Spain)" => "eu-south-2",
        "EU (Stockholm)" | "Europe (Stockholm)" => "eu-north-1",
        "Israel (Tel Aviv)" => "il-central-1",
        "Mexico (Central)" => "mx-central-1",
        "Middle East (Bahrain)" => "me-south-1",
        "Middle East (UAE)" => "me-central-1",
        "South America (Sao Paulo)" | "South America (São Paulo)" => "sa-east-1",
        // Not commercial, but their alarms reach tocsin the same way.
        "AWS GovCloud (US-West)" | "AWS GovCloud (US)" => "us-gov-west-1",
        "AWS GovCloud (US-East)" => "us-gov-east-1",
        "China (Beijing)" => "cn-north-1",
        "China (Ningxia)" => "cn-northwest-1",
        _ => return None,
    };
    Some(code)
}

/// `xx-name-N`: lowercase words joined by dashes, ending in a number.
fn looks_like_code(s: &str) -> bool {
    let mut parts = s.split('-');
    let first_ok = parts
        .next()
        .is_some_and(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_lowercase()));
    let rest: Vec<&str> = parts.collect();
    first_ok
        && rest.len() >= 2
        && rest
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && rest[..rest.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_gives_region_and_account() {
        let p = arn_parts("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:a:b").unwrap();
        assert_eq!((p.region, p.account), ("eu-west-1", "123456789012"));
        assert_eq!(arn_parts("arn:aws:s3:::bucket"), None);
        assert_eq!(arn_parts("not an arn"), None);
        assert_eq!(arn_parts("arn:aws:cloudwatch:eu-west-1:1"), None);
        assert_eq!(arn_parts("nra:aws:cloudwatch:eu-west-1:1:alarm:x"), None);
    }

    #[test]
    fn display_names_in_both_spellings_map_to_codes() {
        assert_eq!(region_code("EU (Ireland)"), Some("eu-west-1"));
        assert_eq!(region_code("Europe (Ireland)"), Some("eu-west-1"));
        assert_eq!(region_code("US East (N. Virginia)"), Some("us-east-1"));
        assert_eq!(
            region_code("Asia Pacific (New Zealand)"),
            Some("ap-southeast-6")
        );
        assert_eq!(region_code("South America (São Paulo)"), Some("sa-east-1"));
        assert_eq!(region_code("eu-west-1"), Some("eu-west-1"));
        assert_eq!(region_code("us-gov-west-1"), Some("us-gov-west-1"));
        assert_eq!(region_code("Atlantis (Central)"), None);
        assert_eq!(region_code("EU"), None);
        assert_eq!(region_code("EU - Ireland"), Some("eu-west-1"));
        assert_eq!(region_code("US East - N. Virginia"), Some("us-east-1"));
        assert_eq!(region_code("Atlantis - Central"), None);
    }

    #[test]
    fn any_arn_gives_its_region_even_without_an_account() {
        assert_eq!(
            arn_region("arn:aws:sns:eu-west-1:123:topic"),
            Some("eu-west-1")
        );
        assert_eq!(
            arn_region("arn:aws:health:us-east-1::event/X"),
            Some("us-east-1")
        );
        assert_eq!(arn_region("arn:aws:sns:EXAMPLE"), None);
        assert_eq!(arn_region("arn:aws:s3:::bucket"), None);
    }

    #[test]
    fn built_arns_use_the_region_partition() {
        assert_eq!(
            alarm_arn("eu-west-1", "123456789012", "x"),
            "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:x"
        );
        assert!(alarm_arn("cn-north-1", "1", "x").starts_with("arn:aws-cn:"));
    }
}
