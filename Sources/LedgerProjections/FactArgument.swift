/// An argument of a fact's framework: an active claim or an evidence item.
public enum FactArgument: Hashable, Sendable, CustomStringConvertible {
    case claim(String)
    case evidence(String)

    /// "claim C-1" or "evidence E-3".
    public var description: String {
        switch self {
        case let .claim(id): "claim \(id)"
        case let .evidence(id): "evidence \(id)"
        }
    }
}
