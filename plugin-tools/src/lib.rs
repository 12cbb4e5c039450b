//! Plugin author tooling behind `ember plugin`: scaffold a plugin project,
//! build and componentize it, inspect a component. (Being filled in.)
