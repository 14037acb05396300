//! The formats shared between the native parts and the TypeScript CLI.
pub const protocol = @import("protocol.zig");
pub const image = @import("image.zig");
pub const maps = @import("maps.zig");

test {
    _ = protocol;
    _ = image;
    _ = maps;
}
