/// Comparing secrets (passwords) from peers.
public enum Secret {
    /// Whether two secrets are equal, in time that depends only on their lengths: the loop
    /// does not stop at the first differing byte, so timing tells a guesser nothing about
    /// how much of a guess was right.
    public static func equal(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8)
        let b = Array(rhs.utf8)
        var difference: UInt8 = a.count == b.count ? 0 : 1
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
