#include <stdio.h>
int main(void)
{
    puts("esmd " ESMD_VERSION);
    return 0;
}
