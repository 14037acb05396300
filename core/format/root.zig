//! The formats shared between the native parts and the TypeScript CLI.
pub const protocol = @import("protocol.zig");

test {
    _ = protocol;
}
