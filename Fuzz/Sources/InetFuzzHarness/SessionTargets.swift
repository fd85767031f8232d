#if DEBUG
enum SessionTargets {
    static let all: [FuzzTarget] = []
}
#endif
