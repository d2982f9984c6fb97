//! Payment channels (banks and third parties) as configured.

use bincode::{Decode, Encode};
use engine::routing::{ChannelSpec, Method};
use engine::Currency;

use super::Tail;

/// A channel as stored. `Debug` leaves the notification secret out.
#[derive(Clone, PartialEq, Eq, Encode, Decode)]
pub struct ChannelRecord {
    pub id: u128,
    /// 1, 2, …: numbers the channel's platform accounts (receivable, fees).
    pub number: u32,
    pub name: String,
    pub endpoint: String,
    /// ISO numeric code of the one currency it takes (limits are in its minor units).
    pub currency: u16,
    pub bank_card: bool,
    pub fee_rate_ppm: u32,
    pub fee_fixed_minor: i64,
    pub min_minor: i64,
    pub max_minor: i64,
    pub daily_limit_minor: i64,
    pub priority: u32,
    pub weight: u32,
    pub enabled: bool,
    pub inflight_max: u32,
    pub created_at_ns: u64,
    /// The key the channel signs its notifications with (never shown in answers). In
    /// memory only: the store keeps it sealed in `notify_secret_sealed` (records written
    /// before sealing existed hold it here, and are sealed when next written).
    pub notify_secret: Option<String>,
    /// `notify_secret` sealed under the master key (context: the channel id).
    pub notify_secret_sealed: Tail<Option<Vec<u8>>>,
    /// The position (minor units) below which the channel needs funding: an alert fires
    /// under it. 0: none (records written before #7 read as 0).
    pub position_low_water_minor: Tail<i64>,
    /// How it settles its takings to the reserve (issue #16): T+1 to reserve account 0 for
    /// records written before.
    pub settlement: Tail<ChannelSettlementTerms>,
    /// The layout of its daily statement (issue #17): 0 Alipay trade bill (and records
    /// written before), 1 WeChat Pay bill.
    pub statement_format: Tail<u8>,
}

/// How a channel settles what it owes us to the reserve: a business date's net takings
/// `lag_days` business days later, to reserve account `reserve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ChannelSettlementTerms {
    pub lag_days: u16,
    /// The reserve account's number (0: `default`).
    pub reserve: u32,
}

impl Default for ChannelSettlementTerms {
    fn default() -> ChannelSettlementTerms {
        ChannelSettlementTerms {
            lag_days: 1,
            reserve: 0,
        }
    }
}

impl std::fmt::Debug for ChannelRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ChannelRecord(chn_{:032x} {} #{})",
            self.id, self.name, self.number
        )
    }
}

impl ChannelRecord {
    pub fn spec(&self) -> ChannelSpec {
        ChannelSpec {
            name: self.name.clone(),
            methods: if self.bank_card {
                vec![Method::BankCard]
            } else {
                vec![]
            },
            currencies: Currency::from_numeric(self.currency).into_iter().collect(),
            fee_rate_ppm: self.fee_rate_ppm,
            fee_fixed_minor: self.fee_fixed_minor,
            min_minor: self.min_minor,
            max_minor: self.max_minor,
            daily_limit_minor: self.daily_limit_minor,
            priority: self.priority,
            weight: self.weight,
            enabled: self.enabled,
            inflight_max: self.inflight_max,
        }
    }
}
