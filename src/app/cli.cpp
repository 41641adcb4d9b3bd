// Placeholder until the app layer lands.
