// Placeholder until the app layer lands.
int main() { return 0; }
