import NIOCore

extension TimeAmount {
    /// `seconds` as a time amount: negative, NaN and zero give zero, anything past ~285 years
    /// (and +infinity) saturates. `Int64(seconds * 1e9)` traps on such values; every duration
    /// from a config file or a peer goes through here.
    public static func seconds(clamping seconds: Double) -> TimeAmount {
        guard !seconds.isNaN, seconds > 0 else { return .zero }
        guard seconds < 9e9 else { return .nanoseconds(Int64.max / 2) }
        return .nanoseconds(Int64(seconds * 1e9))
    }
}
