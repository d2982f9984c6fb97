//! The chart of accounts. Codes are four digits; the first says the type (1 assets,
//! 2 liabilities, 3 equity, 4 income, 5 expenses). docs/GL.md gives the reason for each.

use bincode::{Decode, Encode};

use crate::ids::{AccountId, PlatformRole};

/// What a GL account is, and so on which side its balance is normally carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GlType {
    Asset,
    Liability,
    Equity,
    Income,
    Expense,
}

impl GlType {
    /// Assets and expenses are debit-normal; liabilities, equity and income credit-normal.
    pub fn debit_normal(self) -> bool {
        matches!(self, GlType::Asset | GlType::Expense)
    }

    /// The public name (`"asset"`, …).
    pub fn name(self) -> &'static str {
        match self {
            GlType::Asset => "asset",
            GlType::Liability => "liability",
            GlType::Equity => "equity",
            GlType::Income => "income",
            GlType::Expense => "expense",
        }
    }
}

/// A GL account of the chart. Every ledger account belongs to exactly one. The discriminant
/// is the code: stable, persisted, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
#[repr(u16)]
pub enum GlAccount {
    /// Customer money held at clearing banks (备付金): the reserve.
    Reserve = 1001,
    /// Money moving between the platform's bank accounts or out to a payee, not yet arrived.
    FundsInTransit = 1002,
    /// What channels owe us for charges they made, until they settle to the reserve.
    ChannelReceivable = 1101,
    /// Merchants whose refunds and fees exceeded their balance: they owe us.
    MerchantNegative = 1201,
    /// Customers' drawn credit lines.
    CreditReceivable = 1301,
    /// Reconciliation differences where the channel holds less than we booked.
    SuspenseShort = 1901,
    /// What customers hold with us.
    CustomerBalances = 2001,
    /// Merchants' takings not yet matured for settlement (T+N).
    MerchantPending = 2101,
    /// Merchants' matured takings, ready to pay out.
    MerchantAvailable = 2102,
    /// Profit-sharing receivers' shares.
    SplitReceivers = 2103,
    /// Refunds accepted and sent to a channel, not yet confirmed.
    RefundsInTransit = 2201,
    /// Coupon budgets merchants or the platform have set aside.
    CouponBudgets = 2301,
    /// Reconciliation differences where the channel holds more than we booked.
    SuspenseLong = 2901,
    /// The platform's own capital put into the reserve.
    PlatformEquity = 3001,
    /// Fees merchants pay us.
    FeeIncome = 4001,
    /// Interest on overdue credit.
    InterestIncome = 4002,
    /// Fees channels take from us.
    ChannelFees = 5001,
    /// Coupons and discounts the platform funds.
    PlatformDiscounts = 5002,
    /// Reconciliation differences written off within tolerance.
    ReconWriteOffs = 5003,
    /// Credit that will not be repaid.
    CreditLosses = 5004,
    /// Settlement payouts sent to merchants' banks, not yet confirmed by the payout channel.
    /// (Declared last: variants are persisted by position.)
    PayoutsInTransit = 2104,
    /// Customer money held for two-phase payments: authorized, not yet captured or voided.
    /// Still owed to the customer; at capture it moves to the merchant, at void back.
    AuthorizationHolds = 2002,
}

impl GlAccount {
    /// Every account of the chart, in code order.
    pub const ALL: [GlAccount; 22] = [
        GlAccount::Reserve,
        GlAccount::FundsInTransit,
        GlAccount::ChannelReceivable,
        GlAccount::MerchantNegative,
        GlAccount::CreditReceivable,
        GlAccount::SuspenseShort,
        GlAccount::CustomerBalances,
        GlAccount::AuthorizationHolds,
        GlAccount::MerchantPending,
        GlAccount::MerchantAvailable,
        GlAccount::SplitReceivers,
        GlAccount::PayoutsInTransit,
        GlAccount::RefundsInTransit,
        GlAccount::CouponBudgets,
        GlAccount::SuspenseLong,
        GlAccount::PlatformEquity,
        GlAccount::FeeIncome,
        GlAccount::InterestIncome,
        GlAccount::ChannelFees,
        GlAccount::PlatformDiscounts,
        GlAccount::ReconWriteOffs,
        GlAccount::CreditLosses,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    /// The account with this code, if the chart has one.
    pub fn from_code(code: u16) -> Option<GlAccount> {
        GlAccount::ALL.iter().copied().find(|a| a.code() == code)
    }

    pub fn gl_type(self) -> GlType {
        match self.code() / 1000 {
            1 => GlType::Asset,
            2 => GlType::Liability,
            3 => GlType::Equity,
            4 => GlType::Income,
            5 => GlType::Expense,
            _ => unreachable!("every code of the chart starts with 1 to 5"),
        }
    }

    /// The English name finance staff see.
    pub fn name(self) -> &'static str {
        match self {
            GlAccount::Reserve => "Reserve: customer funds at banks",
            GlAccount::FundsInTransit => "Funds in transit",
            GlAccount::ChannelReceivable => "Receivable from channels",
            GlAccount::MerchantNegative => "Merchant negative balances",
            GlAccount::CreditReceivable => "Credit receivable",
            GlAccount::SuspenseShort => "Suspense (short)",
            GlAccount::CustomerBalances => "Customer balances",
            GlAccount::AuthorizationHolds => "Customer funds on hold (authorizations)",
            GlAccount::MerchantPending => "Merchant pending settlement",
            GlAccount::MerchantAvailable => "Merchant available",
            GlAccount::SplitReceivers => "Split receivers",
            GlAccount::PayoutsInTransit => "Merchant payouts in transit",
            GlAccount::RefundsInTransit => "Refunds in transit",
            GlAccount::CouponBudgets => "Coupon budgets",
            GlAccount::SuspenseLong => "Suspense (long)",
            GlAccount::PlatformEquity => "Platform equity",
            GlAccount::FeeIncome => "Fee income",
            GlAccount::InterestIncome => "Interest income",
            GlAccount::ChannelFees => "Channel fees",
            GlAccount::PlatformDiscounts => "Platform-funded discounts",
            GlAccount::ReconWriteOffs => "Reconciliation write-offs",
            GlAccount::CreditLosses => "Credit losses",
        }
    }

    /// The GL account a platform role's ledger accounts belong to: the platform accounts are
    /// the GL's control accounts.
    pub fn of_platform_role(role: PlatformRole) -> GlAccount {
        match role {
            PlatformRole::CustomerFunds => GlAccount::Reserve,
            PlatformRole::FeeIncome => GlAccount::FeeIncome,
            PlatformRole::ChannelReceivable => GlAccount::ChannelReceivable,
            PlatformRole::ChannelFees => GlAccount::ChannelFees,
            PlatformRole::MerchantNegative => GlAccount::MerchantNegative,
            PlatformRole::PayoutsInTransit => GlAccount::PayoutsInTransit,
            PlatformRole::FundsInTransit => GlAccount::FundsInTransit,
            PlatformRole::Equity => GlAccount::PlatformEquity,
            PlatformRole::SuspenseShort => GlAccount::SuspenseShort,
            PlatformRole::SuspenseLong => GlAccount::SuspenseLong,
            PlatformRole::ReconWriteOffs => GlAccount::ReconWriteOffs,
            PlatformRole::PlatformDiscounts => GlAccount::PlatformDiscounts,
            PlatformRole::InterestIncome => GlAccount::InterestIncome,
            PlatformRole::AuthorizationHolds => GlAccount::AuthorizationHolds,
        }
    }

    /// The GL account of a ledger account created without one: a platform account's role
    /// decides it; any other account is a customer's balance. Accounts written before the
    /// chart existed (record format 1) decode with this; merchants' accounts are then moved
    /// to [`GlAccount::MerchantAvailable`] by a journal entry (`GlAssigned`).
    pub fn default_for(account: AccountId) -> GlAccount {
        account
            .platform_role()
            .map_or(GlAccount::CustomerBalances, GlAccount::of_platform_role)
    }

    /// A credit-positive ledger balance as a signed amount on this account's normal side
    /// (what `GET /v1/gl/accounts` prints): positive when the account holds what it is for.
    pub fn on_normal_side(self, credit_positive: i128) -> i128 {
        if self.gl_type().debit_normal() {
            -credit_positive
        } else {
            credit_positive
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_ordered_and_typed_by_their_first_digit() {
        let codes: Vec<u16> = GlAccount::ALL.iter().map(|a| a.code()).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted, "ALL is in code order without repeats");
        for a in GlAccount::ALL {
            assert_eq!(GlAccount::from_code(a.code()), Some(a));
            assert!(!a.name().is_empty());
        }
        assert_eq!(GlAccount::from_code(1000), None);
        assert_eq!(GlAccount::Reserve.gl_type(), GlType::Asset);
        assert_eq!(GlAccount::MerchantAvailable.gl_type(), GlType::Liability);
        assert_eq!(GlAccount::PlatformEquity.gl_type(), GlType::Equity);
        assert_eq!(GlAccount::FeeIncome.gl_type(), GlType::Income);
        assert_eq!(GlAccount::CreditLosses.gl_type(), GlType::Expense);
    }

    #[test]
    fn the_chart_covers_what_the_contract_names() {
        // ../shared/FUNDS.md, "General ledger": the accounts the chart must cover, by type.
        let assets = [
            GlAccount::Reserve,
            GlAccount::FundsInTransit,
            GlAccount::ChannelReceivable,
            GlAccount::MerchantNegative,
            GlAccount::SuspenseShort,
            GlAccount::CreditReceivable,
        ];
        let liabilities = [
            GlAccount::CustomerBalances,
            GlAccount::MerchantPending,
            GlAccount::MerchantAvailable,
            GlAccount::SplitReceivers,
            GlAccount::RefundsInTransit,
            GlAccount::CouponBudgets,
            GlAccount::SuspenseLong,
        ];
        let income = [GlAccount::FeeIncome, GlAccount::InterestIncome];
        let expenses = [
            GlAccount::ChannelFees,
            GlAccount::PlatformDiscounts,
            GlAccount::ReconWriteOffs,
            GlAccount::CreditLosses,
        ];
        for (accounts, t) in [
            (&assets[..], GlType::Asset),
            (&liabilities[..], GlType::Liability),
            (&income[..], GlType::Income),
            (&expenses[..], GlType::Expense),
        ] {
            for a in accounts {
                assert_eq!(a.gl_type(), t, "{a:?}");
            }
        }
    }

    #[test]
    fn normal_sides() {
        // A deposit of 100: the customer's balance +100 (credit), customer funds -100 (debit).
        assert_eq!(GlAccount::CustomerBalances.on_normal_side(100), 100);
        assert_eq!(GlAccount::Reserve.on_normal_side(-100), 100);
        // Fee income is credited, channel fees debited: both positive on their normal side.
        assert_eq!(GlAccount::FeeIncome.on_normal_side(6), 6);
        assert_eq!(GlAccount::ChannelFees.on_normal_side(-2), 2);
        assert_eq!(
            GlAccount::of_platform_role(PlatformRole::CustomerFunds),
            GlAccount::Reserve
        );
    }
}
