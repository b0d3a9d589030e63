//! The region hint: which provider region is nearest the client.
//!
//! From the request's Cloudflare `cf` data: with latitude/longitude, the nearest region by
//! great-circle distance; else by country (a few countries have a region of their own);
//! else by continent. `allowed` restricts the answer to the regions a deployment exists
//! in (nearest of those to the chosen point). Region names are AWS's; Azure and Vertex
//! deployments map from them in the gateway's config (`region_name`).

/// AWS regions with the approximate coordinates of their metro area.
pub const REGIONS: [(&str, f64, f64); 21] = [
    ("us-east-1", 38.9, -77.4),
    ("us-east-2", 40.0, -83.0),
    ("us-west-1", 37.4, -121.9),
    ("us-west-2", 45.8, -119.7),
    ("ca-central-1", 45.5, -73.6),
    ("sa-east-1", -23.5, -46.6),
    ("eu-west-1", 53.3, -6.3),
    ("eu-west-2", 51.5, -0.1),
    ("eu-west-3", 48.9, 2.35),
    ("eu-central-1", 50.1, 8.7),
    ("eu-north-1", 59.3, 18.1),
    ("eu-south-1", 45.5, 9.2),
    ("me-central-1", 25.2, 55.3),
    ("af-south-1", -33.9, 18.4),
    ("ap-south-1", 19.1, 72.9),
    ("ap-southeast-1", 1.35, 103.8),
    ("ap-southeast-2", -33.9, 151.2),
    ("ap-northeast-1", 35.7, 139.7),
    ("ap-northeast-2", 37.6, 127.0),
    ("ap-northeast-3", 34.7, 135.5),
    ("ap-east-1", 22.3, 114.2),
];

const COUNTRIES: [(&str, &str); 27] = [
    ("US", "us-east-1"),
    ("CA", "ca-central-1"),
    ("MX", "us-east-2"),
    ("BR", "sa-east-1"),
    ("GB", "eu-west-2"),
    ("IE", "eu-west-1"),
    ("FR", "eu-west-3"),
    ("DE", "eu-central-1"),
    ("NL", "eu-central-1"),
    ("CH", "eu-central-1"),
    ("IT", "eu-south-1"),
    ("SE", "eu-north-1"),
    ("NO", "eu-north-1"),
    ("FI", "eu-north-1"),
    ("DK", "eu-north-1"),
    ("AE", "me-central-1"),
    ("SA", "me-central-1"),
    ("ZA", "af-south-1"),
    ("IN", "ap-south-1"),
    ("SG", "ap-southeast-1"),
    ("AU", "ap-southeast-2"),
    ("NZ", "ap-southeast-2"),
    ("JP", "ap-northeast-1"),
    ("KR", "ap-northeast-2"),
    ("HK", "ap-east-1"),
    ("TW", "ap-east-1"),
    ("CN", "ap-east-1"),
];

const CONTINENTS: [(&str, &str); 6] = [
    ("NA", "us-east-1"),
    ("SA", "sa-east-1"),
    ("EU", "eu-central-1"),
    ("AF", "eu-south-1"),
    ("AS", "ap-southeast-1"),
    ("OC", "ap-southeast-2"),
];

/// Where the client is, as Cloudflare's `cf` object says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientGeo {
    pub country: Option<String>,
    pub continent: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub colo: Option<String>,
}

fn coords(region: &str) -> Option<(f64, f64)> {
    REGIONS
        .iter()
        .find(|(r, _, _)| *r == region)
        .map(|(_, la, lo)| (*la, *lo))
}

/// Great-circle distance in km.
fn distance((la1, lo1): (f64, f64), (la2, lo2): (f64, f64)) -> f64 {
    let (p1, p2) = (la1.to_radians(), la2.to_radians());
    let dp = p2 - p1;
    let dl = (lo2 - lo1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().min(1.0).asin()
}

fn nearest<'a>(point: (f64, f64), among: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    among
        .filter_map(|r| coords(r).map(|c| (r, distance(point, c))))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(r, _)| r)
}

fn lookup(table: &[(&'static str, &'static str)], key: Option<&str>) -> Option<&'static str> {
    let key = key?.trim();
    table
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, r)| *r)
}

/// The region nearest `geo`, among `allowed` when it is not empty (unknown names in
/// `allowed` are skipped). `None` when nothing about the client's location is known.
pub fn nearest_region(geo: &ClientGeo, allowed: &[String]) -> Option<String> {
    let point = match (geo.latitude, geo.longitude) {
        (Some(la), Some(lo)) if (-90.0..=90.0).contains(&la) && (-180.0..=180.0).contains(&lo) => {
            Some((la, lo))
        }
        _ => lookup(&COUNTRIES, geo.country.as_deref())
            .or_else(|| lookup(&CONTINENTS, geo.continent.as_deref()))
            .and_then(coords),
    }?;
    let found = if allowed.is_empty() {
        nearest(point, REGIONS.iter().map(|(r, _, _)| *r))
    } else {
        nearest(point, allowed.iter().map(String::as_str))
    };
    found.map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(country: &str) -> ClientGeo {
        ClientGeo {
            country: Some(country.into()),
            ..ClientGeo::default()
        }
    }

    #[test]
    fn coordinates_pick_the_nearest_region() {
        let seattle = ClientGeo {
            latitude: Some(47.6),
            longitude: Some(-122.3),
            country: Some("US".into()),
            ..ClientGeo::default()
        };
        assert_eq!(nearest_region(&seattle, &[]).as_deref(), Some("us-west-2"));
        let tokyo = ClientGeo {
            latitude: Some(35.68),
            longitude: Some(139.69),
            ..ClientGeo::default()
        };
        assert_eq!(
            nearest_region(&tokyo, &[]).as_deref(),
            Some("ap-northeast-1")
        );
    }

    #[test]
    fn country_then_continent() {
        assert_eq!(
            nearest_region(&geo("de"), &[]).as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(
            nearest_region(&geo("GB"), &[]).as_deref(),
            Some("eu-west-2")
        );
        let kenya = ClientGeo {
            country: Some("KE".into()),
            continent: Some("AF".into()),
            ..ClientGeo::default()
        };
        assert_eq!(nearest_region(&kenya, &[]).as_deref(), Some("eu-south-1"));
        assert_eq!(nearest_region(&ClientGeo::default(), &[]), None);
        assert_eq!(nearest_region(&geo("XX"), &[]), None);
    }

    #[test]
    fn allowed_regions_restrict_the_answer() {
        let allowed = vec!["us-west-2".to_string(), "eu-west-1".to_string()];
        assert_eq!(
            nearest_region(&geo("DE"), &allowed).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            nearest_region(&geo("JP"), &allowed).as_deref(),
            Some("us-west-2")
        );
        let unknown = vec!["mars-north-1".to_string()];
        assert_eq!(nearest_region(&geo("DE"), &unknown), None);
    }
}
