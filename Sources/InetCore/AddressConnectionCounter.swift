import NIOConcurrencyHelpers

/// Counts open connections per client address for a per-address limit.
public final class AddressConnectionCounter: Sendable {
    public init() {}

    private let counts = NIOLockedValueBox<[String: Int]>([:])

    /// Counts one more connection from `address`; false (and nothing counted) past `limit`.
    public func open(_ address: String, limit: Int) -> Bool {
        counts.withLockedValue { counts in
            let current = counts[address, default: 0]
            guard current < limit else { return false }
            counts[address] = current + 1
            return true
        }
    }

    public func close(_ address: String) {
        counts.withLockedValue { counts in
            let next = (counts[address] ?? 1) - 1
            counts[address] = next > 0 ? next : nil
        }
    }
}
